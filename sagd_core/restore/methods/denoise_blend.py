"""Applying the calibrated denoising blend of :mod:`denoise_calibration` (kept apart so the
restoration code can use it without importing the calibration, which calls ``restore``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sagd_core.restore.fourier import irfft2, rfft2
from sagd_core.restore.models import LoadedModel
from sagd_core.spectral.grid import radius_grid

#: Ring edges in cycles/pixel (the last ring reaches the corner, r = 0.71).
RING_EDGES: tuple[float, ...] = tuple(float(e) for e in np.linspace(0.0, 0.75, 13))
#: A calibration applies when the declared noise std is within this relative distance.
NOISE_TOLERANCE = 0.1
META_KEY = "denoise_calibration"


def ring_index(h: int, w: int) -> np.ndarray:
    return np.clip(np.digitize(radius_grid(h, w), RING_EDGES) - 1, 0, len(RING_EDGES) - 2)


def find_calibration(model: LoadedModel, noise_std: float) -> dict[str, Any] | None:
    """The model's calibration for ``noise_std`` (within :data:`NOISE_TOLERANCE`), if any."""
    for calib in model.meta.get(META_KEY, []) or []:
        s = float(calib.get("noise_std", 0.0))
        if s > 0 and abs(noise_std - s) <= NOISE_TOLERANCE * s:
            return dict(calib)
    return None


def apply_blend(denoised: torch.Tensor, y: torch.Tensor, calib: dict[str, Any]) -> torch.Tensor:
    """``F⁻¹[a(r) F D + b(r) F y]`` with the calibrated per-ring gains (the band is left to the
    caller, which zeroes it)."""
    h, w = denoised.shape[-2:]
    rings = torch.as_tensor(ring_index(h, w), device=denoised.device)
    a = torch.as_tensor(calib["a"], dtype=torch.float64, device=denoised.device)[rings]
    b = torch.as_tensor(calib["b"], dtype=torch.float64, device=denoised.device)[rings]
    spec = a * rfft2(denoised.to(torch.float64)) + b * rfft2(y.to(torch.float64))
    return irfft2(spec, h, w)


__all__ = [
    "META_KEY",
    "NOISE_TOLERANCE",
    "RING_EDGES",
    "apply_blend",
    "find_calibration",
    "ring_index",
]
