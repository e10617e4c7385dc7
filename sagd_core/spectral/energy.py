"""Band energies from orthonormal spectra, in numpy (DESIGN.md §1, §4.1).

Spectra are ``rfft2`` with ``norm="ortho"`` on the unshifted grid; masks live on the half grid
``(H, W//2+1)``. Energies weight each half-grid bin by its multiplicity so that they equal
full-grid sums (Parseval). Torch-free: the report of every restoration uses these.
"""

from __future__ import annotations

import numpy as np

from sagd_core.spectral.grid import half_grid_multiplicity


def energy_of(power: np.ndarray, mask_half: np.ndarray, height: int, width: int) -> float:
    """Mean-square energy under a half-grid mask from a :func:`half_power` spectrum: the
    full-grid sum ``Σ_f M(f) |F x(f)|²`` per pixel and channel (Parseval)."""
    weight = mask_half * half_grid_multiplicity(height, width)
    n = power.size // power.shape[-1] * width
    return float((power * weight).sum()) / n


def residual_from_power(
    diff_power: np.ndarray, reference_power: np.ndarray, trusted_half: np.ndarray, width: int
) -> float:
    """``‖T F(result − reference)‖ / ‖T F reference‖`` over the trusted bins ``T`` (where
    ``M = 0``) from the power spectra of ``result − reference`` and of ``reference``: the
    out-of-band residual every restoration reports (DESIGN.md §4.1)."""
    h = diff_power.shape[-2]
    num = energy_of(diff_power, trusted_half, h, width)
    den = energy_of(reference_power, trusted_half, h, width)
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(np.sqrt(num / den))


__all__ = ["energy_of", "residual_from_power"]
