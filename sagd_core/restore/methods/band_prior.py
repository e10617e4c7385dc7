"""What held-out *corrupted* images tell about the corruption in the band, used to sharpen the
band fill of SAGD (DESIGN.md §4.3). Both statistics are measured on corrupted images only.

1. **Corruption-to-noise ratio ρ** (``corruption_ratio``). A band model trained on ``x' = x + c``
   learns ``E[x'_B | x_t]``, not ``E[x_B | x_t]``: at time ``t`` the band of ``x_t`` holds
   ``√ᾱ c_B`` besides the forward noise, and the denoiser returns part of it. For a Gaussian
   corruption of per-bin power ``v_c`` and forward noise of per-bin power ``w²`` (ρ = v_c / w²),
   ``E[x'_B | x_t] = E[x_B | x_t] + k (x_{t,B} − √ᾱ E[x_B | x_t])`` with
   ``k = √ᾱ ρ / (ᾱ ρ + 1 − ᾱ)``, so the clean posterior mean is recovered exactly as
   ``E[x_B | x_t] = (x̂₀_B − k x_{t,B}) / (1 − k √ᾱ)`` (:func:`clean_tweedie`). Without this, the
   fill read at ``ᾱ`` carries ``√ᾱ x_{t,B}`` — chain noise as strong as the corruption itself, which
   averaging a few chains barely removes. ρ is the band's mean power in the corrupted images over
   the model's mean ``w²`` there; it includes the clean band's own power, so it errs slightly high
   (exact when the corruption dominates, the case where it matters).
2. **Constant-magnitude bins** (``magnitude``). Periodic interference with a random phase puts
   ``a e^{iφ}`` in a bin: its magnitude ``a`` is the same in every image. Such bins are recognised
   by ``|Y_f|`` barely varying across images (coefficient of variation < :data:`MAX_CV`, where
   Gaussian corruption gives ≈ 0.52) while the phase is uniform (mean resultant length below
   :data:`PHASE_SPREAD` / √N). There, ``y_f − x_f`` lies on the circle of radius ``a`` around
   ``y_f``, so the component of ``x_f`` along the corruption's direction is known: the estimate
   is the point of that circle nearest the fill ``m_f`` (the prior mean),
   ``x̂_f = m_f + κ (|y_f − m_f| − a) u``, ``u = (y_f − m_f)/|y_f − m_f|``, with
   ``κ = σ_r² / (σ_r² + s²/2)`` shrinking towards ``m_f`` when broadband noise of std ``s`` is
   declared (``σ_r²``: the variance of ``|Y_f|`` across the held-out images, i.e. of the clean
   radial component). The component across the corruption's direction stays the fill's.
   Magnitudes are per bin of the calibration image size; other sizes skip this step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from sagd_core.restore.fourier import irfft2, rfft2
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.grid import half_grid_multiplicity
from sagd_core.spectral.masks import band_mask

#: Largest coefficient of variation of ``|Y_f|`` for a constant-magnitude bin (Rayleigh: 0.52).
MAX_CV = 0.2
#: A bin's phases count as uniform when their mean resultant length is below this / √N.
PHASE_SPREAD = 3.0
#: Fewest held-out images to trust per-bin magnitudes.
MIN_MAGNITUDE_IMAGES = 16


def corruption_ratio(corrupted: np.ndarray, spec: BandSpec, weights: np.ndarray) -> float:
    """ρ: mean per-bin power of ``corrupted`` ``(N, C, H, W)`` in the band over the mean ``w²``
    of the model's weights there (half-grid multiplicity counted)."""
    h, w = corrupted.shape[-2:]
    mask = band_mask(spec, h, w) * half_grid_multiplicity(h, w)
    spectra = np.fft.rfft2(corrupted.astype(np.float64), norm="ortho")
    power = (np.abs(spectra) ** 2).mean(axis=(0, 1))
    noise = float((mask * weights.astype(np.float64) ** 2).sum())
    return float((mask * power).sum()) / noise if noise > 0 else 0.0


def tweedie_coefficient(rho: float, alpha_bar: float) -> float:
    """``k = √ᾱ ρ / (ᾱ ρ + 1 − ᾱ)`` (module docstring, point 1)."""
    return math.sqrt(alpha_bar) * rho / (alpha_bar * rho + 1.0 - alpha_bar) if rho > 0 else 0.0


def clean_tweedie(
    x0: torch.Tensor, x_t: torch.Tensor, alpha_bar: float, rho: float, mask: torch.Tensor
) -> torch.Tensor:
    """The clean posterior mean from a corrupted-data model's ``x̂₀`` at ``x_t``, in the band
    (``mask`` on the half grid); the trusted part of ``x̂₀`` is kept."""
    k = tweedie_coefficient(rho, alpha_bar)
    if k == 0.0:
        return x0
    h, w = x0.shape[-2:]
    m = mask.to(x0.dtype)
    spec0, spec_t = rfft2(x0), rfft2(x_t.to(x0.dtype))
    clean = (spec0 - k * spec_t) / (1.0 - k * math.sqrt(alpha_bar))
    return irfft2((1.0 - m) * spec0 + m * clean, h, w)


def magnitude_stats(corrupted: np.ndarray, spec: BandSpec) -> dict[str, Any] | None:
    """Constant-magnitude bins of the band in ``corrupted`` ``(N, C, H, W)`` (module docstring,
    point 2), or ``None`` when there are none or too few images."""
    n, h, w = corrupted.shape[0], *corrupted.shape[-2:]
    if n < MIN_MAGNITUDE_IMAGES:
        return None
    mask = band_mask(spec, h, w) >= 1.0
    spec_y = np.fft.rfft2(corrupted.astype(np.float64), norm="ortho")[:, :, mask]  # (N, C, B)
    mag = np.abs(spec_y)
    mean, std = mag.mean(axis=0), mag.std(axis=0)
    resultant = np.abs((spec_y / np.maximum(mag, 1e-300)).mean(axis=0))
    keep = (std < MAX_CV * mean) & (resultant < PHASE_SPREAD / math.sqrt(n)) & (mean > 0)
    keep = keep.all(axis=0)  # the same bins in every channel
    if not keep.any():
        return None
    rows, cols = np.nonzero(mask)
    return {
        "height": h,
        "width": w,
        "bins": [[int(rows[b]), int(cols[b])] for b in np.nonzero(keep)[0]],
        "magnitude": mean[:, keep].T.tolist(),  # (bins, C)
        "radial_variance": (std[:, keep] ** 2).T.tolist(),
        "images": n,
    }


def project_magnitude(
    result: torch.Tensor, y: torch.Tensor, stats: dict[str, Any] | None, *, noise_std: float = 0.0
) -> tuple[torch.Tensor, int]:
    """Apply point 2 of the module docstring to ``result`` ``(K, C, H, W)`` given the input ``y``
    ``(1, C, H, W)``; returns the new result and the number of bins changed (0 when ``stats``
    is missing or was measured at another size or channel count)."""
    h, w = result.shape[-2:]
    if not stats or (stats["height"], stats["width"]) != (h, w):
        return result, 0
    mag = torch.as_tensor(stats["magnitude"], dtype=torch.float64, device=result.device).T
    if mag.shape[0] != result.shape[1]:
        return result, 0
    var = torch.as_tensor(stats["radial_variance"], dtype=torch.float64, device=result.device).T
    kappa = var / (var + noise_std**2 / 2.0) if noise_std > 0 else torch.ones_like(var)
    rows = torch.as_tensor([b[0] for b in stats["bins"]], device=result.device)
    cols = torch.as_tensor([b[1] for b in stats["bins"]], device=result.device)
    spec_r = rfft2(result.to(torch.float64))
    spec_y = rfft2(y.to(torch.float64))
    m = spec_r[:, :, rows, cols]  # (K, C, B): the fill, the prior mean
    d = spec_y[:, :, rows, cols] - m
    size = d.abs()
    u = torch.where(size > 0, d / size.clamp_min(1e-300), torch.ones_like(d))
    spec_r[:, :, rows, cols] = m + kappa * (size - mag) * u
    return irfft2(spec_r, h, w), len(stats["bins"])


__all__ = [
    "MAX_CV",
    "clean_tweedie",
    "corruption_ratio",
    "magnitude_stats",
    "project_magnitude",
    "tweedie_coefficient",
]
