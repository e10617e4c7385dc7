"""Fourier-domain helpers for the learned methods: band split and merge on torch tensors
(DESIGN.md §1, §4). Band energies (numpy) are in :mod:`sagd_core.spectral.energy`.

All transforms are orthonormal ``rfft2``/``irfft2`` on the unshifted grid; masks live on the half
grid ``(H, W//2+1)``.
"""

from __future__ import annotations

import torch


def rfft2(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.rfft2(x, norm="ortho")


def irfft2(spec: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return torch.fft.irfft2(spec, s=(height, width), norm="ortho")


def apply_gain(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``F⁻¹ diag(gain) F x`` for a real, symmetric half-grid ``gain``."""
    h, w = x.shape[-2:]
    return irfft2(rfft2(x) * gain.to(x.dtype), h, w)


def merge_bands(trusted: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``F⁻¹[(1−M)·F trusted + M·F filled]`` (DESIGN.md §4.1, DDNM's null-space replacement)."""
    h, w = trusted.shape[-2:]
    m = mask.to(trusted.dtype)
    spec = (1.0 - m) * rfft2(trusted) + m * rfft2(filled.to(trusted.dtype))
    return irfft2(spec, h, w)


__all__ = ["apply_gain", "irfft2", "merge_bands", "rfft2"]
