"""An exact ε-predictor for a model trained on *corrupted* Gaussian images (DESIGN.md §4.3).

The data are ``y = x + c`` with ``x ~ N(0, Σ)`` (any covariance, stationary or not) and
``c ~ N(0, Σ_c)``; the model's forward noise has covariance ``Σ_w``. The optimal predictor is
linear, ``ε̂ = √(1−ᾱ) Σ_w (ᾱ (Σ + Σ_c) + (1−ᾱ) Σ_w)⁻¹ y_t``
(:func:`~sagd_core.spectral.gaussian_posterior.corrupted_eps_matrix`), applied here as a dense
matrix per image channel. Wrapped as a :class:`LoadedModel`, it stands in for a network trained on
corrupted images, so the code a trained model runs (:mod:`sagd_core.restore.methods.
corruption_shaped`) is tested against known posterior means. Grids up to about 64×64.
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
from sagd_core.spectral.gaussian_posterior import circulant_covariance, corrupted_eps_matrix
from sagd_core.spectral.weights import NoiseSpec, noise_weights
from sagd_core.training.checkpoints import TrainedModel
from sagd_core.training.config import ScheduleConfig, TrainConfig


class CorruptedWienerEps(nn.Module):
    """``model(x, t)`` → the exact ε of the corrupted-data model (module docstring), float64."""

    def __init__(
        self,
        schedule: Schedule,
        prior_cov: np.ndarray,
        corruption_cov: np.ndarray,
        noise_cov: np.ndarray,
        shape: tuple[int, int],
    ) -> None:
        super().__init__()
        self.alpha_bars = schedule.alpha_bars
        self.prior_cov = prior_cov
        self.corruption_cov = corruption_cov
        self.noise_cov = noise_cov
        self.shape = shape
        self._matrices: dict[float, torch.Tensor] = {}

    def matrix(self, t: float) -> torch.Tensor:
        """The ε-predictor ``B`` at model time ``t`` (ᾱ interpolated between training times)."""
        if t not in self._matrices:
            steps = np.arange(self.alpha_bars.size, dtype=np.float64)
            a = float(np.interp(t, steps, self.alpha_bars))
            b = corrupted_eps_matrix(self.prior_cov, self.corruption_cov, self.noise_cov, a)
            self._matrices[t] = torch.as_tensor(b)
        return self._matrices[t]

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"oracle built for {self.shape}, given {tuple(x.shape[-2:])}")
        flat = x.to(torch.float64).flatten(-2)  # (B, C, n)
        out = torch.empty_like(flat)
        times = t.tolist()
        for ti in set(times):  # one product per distinct time (a batch usually shares one)
            rows = [i for i, tj in enumerate(times) if tj == ti]
            out[rows] = flat[rows] @ self.matrix(ti).to(x.device).T
        return out.reshape(x.shape).to(x.dtype)


def corrupted_oracle_model(
    prior_cov: np.ndarray,
    noise: NoiseSpec,
    corruption_std: float,
    shape: tuple[int, int],
    *,
    role: str = "band",
    band: BandSpec | None = None,
    schedule: ScheduleConfig | None = None,
) -> LoadedModel:
    """A :class:`LoadedModel` trained (exactly) on ``y = x + c`` with ``x ~ N(0, prior_cov)`` and
    corruption shaped like its forward noise, ``c ~ N(0, corruption_std² Σ_w)``; with the
    training default schedule unless ``schedule`` is given."""
    h, w = shape
    noise_cov = circulant_covariance(noise_weights(noise, h, w) ** 2, h, w)
    config = TrainConfig(
        model=unet_preset("cpu-tiny", 1),
        noise=noise,
        band=band,
        role=role,  # type: ignore[arg-type]
        project_trusted=noise.omit is not None,
        schedule=schedule if schedule is not None else ScheduleConfig(),
    )
    built = config.schedule.build()
    net = CorruptedWienerEps(built, prior_cov, corruption_std**2 * noise_cov, noise_cov, shape)
    meta: dict[str, Any] = {"oracle": "corrupted wiener", "corruption_std": corruption_std}
    return TrainedModel(
        net=cast(UNet, net), config=config, schedule=built, meta=meta, device=torch.device("cpu")
    )


__all__ = ["CorruptedWienerEps", "corrupted_oracle_model"]
