"""Orthonormal real FFTs and spectral gains on numpy arrays (DESIGN.md §1): the torch-free
counterpart of :mod:`sagd_core.restore.fourier`, used by the notch, the classical estimators
and every report."""

from __future__ import annotations

import numpy as np


def rfft2(x: np.ndarray) -> np.ndarray:
    """Orthonormal ``rfft2`` over the last two axes (float64 input)."""
    return np.fft.rfft2(np.asarray(x, dtype=np.float64), norm="ortho")


def irfft2(spec: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`rfft2` for an ``height × width`` image."""
    return np.fft.irfft2(spec, s=(height, width), norm="ortho")


def apply_gain(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``F⁻¹ diag(gain) F x`` for a real, symmetric half-grid ``gain`` ``(H, W//2+1)``."""
    h, w = x.shape[-2:]
    return irfft2(rfft2(x) * gain, h, w)


def half_power(x: np.ndarray) -> np.ndarray:
    """``|F x|²`` on the half grid, float64, ``(…, H, W//2+1)``."""
    spec = rfft2(x)
    return spec.real**2 + spec.imag**2


__all__ = ["apply_gain", "half_power", "irfft2", "rfft2"]
