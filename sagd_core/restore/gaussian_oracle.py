"""An exact ε-predictor for stationary Gaussian images: checks restoration against the truth.

For data ``x₀ ~ N(0, Σ₀)`` with ``Σ₀`` diagonal in the Fourier basis (power ``λ(f)``) and SAGD
noise of weights ``w`` (DESIGN.md §3, §5), each frequency is a scalar problem:
``X_t = √ᾱ X₀ + √(1−ᾱ) w Ξ`` and the optimal predictor is
``ε*(x_t) = F⁻¹[√(1−ᾱ) w² / (ᾱ λ + (1−ᾱ) w²) · F x_t]``. Wrapped as a :class:`LoadedModel`, it
lets tests and sanity checks run the real restoration code with a perfect model of known
posterior (the Wiener filter), at any image size.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import nn

from sagd_core.models import UNet, unet_preset
from sagd_core.restore.models import LoadedModel
from sagd_core.schedules import Schedule
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.grid import radius_grid
from sagd_core.spectral.weights import NoiseSpec, noise_weights
from sagd_core.training.checkpoints import TrainedModel
from sagd_core.training.config import TrainConfig


def power_law_spectrum(
    height: int, width: int, *, scale: float = 0.02, r0: float = 0.02, exponent: float = 2.0
) -> np.ndarray:
    """``λ(f) = scale / (r² + r0²)^(exponent/2)`` on the half grid (natural-image-like)."""
    r = radius_grid(height, width)
    return scale / (r**2 + r0**2) ** (exponent / 2)


def sample_gaussian_images(
    count: int, channels: int, height: int, width: int, *, seed: int = 0, **spectrum: float
) -> np.ndarray:
    """``(N, C, H, W)`` float64 draws of the stationary Gaussian with :func:`power_law_spectrum`."""
    gen = torch.Generator().manual_seed(seed)
    xi = torch.randn((count, channels, height, width), generator=gen, dtype=torch.float64)
    lam = torch.as_tensor(power_law_spectrum(height, width, **spectrum))
    spec = torch.fft.rfft2(xi, norm="ortho") * lam.sqrt()
    return torch.fft.irfft2(spec, s=(height, width), norm="ortho").numpy()


class WienerEps(nn.Module):
    """``model(x, t)`` → the exact ε for the Gaussian prior (see the module docstring)."""

    def __init__(self, schedule: Schedule, noise: NoiseSpec, spectrum: dict[str, float]) -> None:
        super().__init__()
        self.alpha_bars = schedule.alpha_bars
        self.noise = noise
        self.spectrum = spectrum
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if (h, w) not in self._grids:
            self._grids[(h, w)] = (
                noise_weights(self.noise, h, w) ** 2,
                power_law_spectrum(h, w, **self.spectrum),
            )
        return self._grids[(h, w)]

    def _alpha_bar(self, t: float) -> float:
        steps = np.arange(self.alpha_bars.size, dtype=np.float64)
        return float(np.interp(t, steps, self.alpha_bars))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        w2_np, lam_np = self._grid(h, w)
        w2 = torch.as_tensor(w2_np, device=x.device)
        lam = torch.as_tensor(lam_np, device=x.device)
        spec = torch.fft.rfft2(x.to(torch.float64), norm="ortho")
        out = torch.empty_like(spec)
        for i, ti in enumerate(t.tolist()):
            a = self._alpha_bar(ti)
            gain = (1 - a) ** 0.5 * w2 / (a * lam + (1 - a) * w2)
            out[i] = spec[i] * gain
        return torch.fft.irfft2(out, s=(h, w), norm="ortho").to(x.dtype)


def oracle_model(
    role: str,
    noise: NoiseSpec,
    *,
    band: BandSpec | None = None,
    channels: int = 1,
    spectrum: dict[str, float] | None = None,
) -> LoadedModel:
    """A :class:`LoadedModel` whose network is :class:`WienerEps` (role and noise as given)."""
    config = TrainConfig(
        model=unet_preset("cpu-tiny", channels),
        noise=noise,
        band=band,
        role=role,  # type: ignore[arg-type]
        project_trusted=noise.omit is not None,
    )
    schedule = config.schedule.build()
    net = WienerEps(schedule, noise, spectrum or {})
    meta: dict[str, Any] = {"oracle": "wiener"}
    return TrainedModel(
        net=cast(UNet, net), config=config, schedule=schedule, meta=meta, device=torch.device("cpu")
    )


__all__ = ["WienerEps", "oracle_model", "power_law_spectrum", "sample_gaussian_images"]
