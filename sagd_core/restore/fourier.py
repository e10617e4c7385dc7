"""Fourier-domain helpers for restoration: band split/merge and band energies (SAGD.md §1, §4).

All transforms are orthonormal ``rfft2``/``irfft2`` on the unshifted grid; masks live on the half
grid ``(H, W//2+1)``. Energies use the half-grid multiplicity so that they equal full-grid sums
(Parseval).
"""

from __future__ import annotations

import numpy as np
import torch

from sagd_core.spectral.grid import half_grid_multiplicity


def rfft2(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.rfft2(x, norm="ortho")


def irfft2(spec: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return torch.fft.irfft2(spec, s=(height, width), norm="ortho")


def apply_gain(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``F⁻¹ diag(gain) F x`` for a real, symmetric half-grid ``gain``."""
    h, w = x.shape[-2:]
    return irfft2(rfft2(x) * gain.to(x.dtype), h, w)


def merge_bands(trusted: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``F⁻¹[(1−M)·F trusted + M·F filled]`` (SAGD.md §4.1, DDNM's null-space replacement)."""
    h, w = trusted.shape[-2:]
    m = mask.to(trusted.dtype)
    spec = (1.0 - m) * rfft2(trusted) + m * rfft2(filled.to(trusted.dtype))
    return irfft2(spec, h, w)


def masked_energy(x: torch.Tensor, mask_half: np.ndarray) -> float:
    """Mean-square energy of ``x`` (…, H, W) under a half-grid mask, per pixel and channel:
    ``Σ_f M(f) |F x(f)|² / (H·W·C)`` summed over the full grid."""
    h, w = x.shape[-2:]
    power = rfft2(x.to(torch.float64)).abs().pow(2)
    weight = torch.as_tensor(mask_half * half_grid_multiplicity(h, w), device=x.device)
    n = x.numel()
    return float((power * weight).sum()) / n


def relative_residual(
    result: torch.Tensor, reference: torch.Tensor, trusted_half: np.ndarray
) -> float:
    """``‖T F(result − reference)‖ / ‖T F reference‖`` over the strictly trusted bins ``T``
    (where ``M = 0``): the out-of-band residual reported by every method (SAGD.md §4.1)."""
    num = masked_energy(result.to(torch.float64) - reference.to(torch.float64), trusted_half)
    den = masked_energy(reference, trusted_half)
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(np.sqrt(num / den))


__all__ = [
    "apply_gain",
    "irfft2",
    "masked_energy",
    "merge_bands",
    "relative_residual",
    "rfft2",
]
