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


def half_power(x: torch.Tensor) -> torch.Tensor:
    """``|F x|²`` on the half grid in float64, ``(…, H, W//2+1)`` (real²+imag², no square root)."""
    spec = rfft2(x.to(torch.float64))
    return spec.real.square() + spec.imag.square()


def energy_of(power: torch.Tensor, mask_half: np.ndarray, height: int, width: int) -> float:
    """Mean-square energy under a half-grid mask from a :func:`half_power` spectrum: the
    full-grid sum ``Σ_f M(f) |F x(f)|²`` per pixel and channel (Parseval)."""
    weight = torch.as_tensor(mask_half * half_grid_multiplicity(height, width), device=power.device)
    n = power.numel() // power.shape[-1] * width
    return float((power * weight).sum()) / n


def masked_energy(x: torch.Tensor, mask_half: np.ndarray) -> float:
    """Mean-square energy of ``x`` (…, H, W) under a half-grid mask, per pixel and channel:
    ``Σ_f M(f) |F x(f)|² / (H·W·C)`` summed over the full grid."""
    h, w = x.shape[-2:]
    return energy_of(half_power(x), mask_half, h, w)


def residual_from_power(
    diff_power: torch.Tensor, reference_power: torch.Tensor, trusted_half: np.ndarray, width: int
) -> float:
    """:func:`relative_residual` from the power spectra of ``result − reference`` and of
    ``reference`` (so that a caller holding both spectra pays no further FFT)."""
    h = diff_power.shape[-2]
    num = energy_of(diff_power, trusted_half, h, width)
    den = energy_of(reference_power, trusted_half, h, width)
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(np.sqrt(num / den))


def relative_residual(
    result: torch.Tensor, reference: torch.Tensor, trusted_half: np.ndarray
) -> float:
    """``‖T F(result − reference)‖ / ‖T F reference‖`` over the strictly trusted bins ``T``
    (where ``M = 0``): the out-of-band residual reported by every method (SAGD.md §4.1)."""
    diff = result.to(torch.float64) - reference.to(torch.float64)
    return residual_from_power(
        half_power(diff), half_power(reference), trusted_half, reference.shape[-1]
    )


__all__ = [
    "apply_gain",
    "energy_of",
    "half_power",
    "irfft2",
    "masked_energy",
    "merge_bands",
    "relative_residual",
    "residual_from_power",
    "rfft2",
]
