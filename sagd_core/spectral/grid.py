"""Frequency grids in cycles per pixel (DESIGN.md §1).

The grid is the unshifted DFT grid: ``fy = fftfreq(H)``, ``fx = fftfreq(W)`` (or ``rfftfreq(W)`` on
the half grid used by ``rfft2``), so every frequency lies in ``[-1/2, 1/2)`` and DC is at index
``(0, 0)``. Two radius conventions exist:

- ``absolute``: ``r = sqrt(fx² + fy²)`` in cycles/pixel, ``r ∈ [0, √2/2]`` (the default);
- ``normalized``: ``r / R_MAX`` with ``R_MAX = √2/2``, in ``[0, 1]`` (used by P1's omission table).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np

RadiusConvention = Literal["absolute", "normalized"]

#: Largest radius on any grid with ``f ∈ [-1/2, 1/2)²`` (the corner (-1/2, -1/2)).
R_MAX = math.sqrt(0.5)


def _check_shape(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"image size must be at least 1×1, got {height}×{width}")


@lru_cache(maxsize=256)
def _axes(height: int, width: int, half: bool) -> tuple[np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(height)[:, None]
    fx = (np.fft.rfftfreq(width) if half else np.fft.fftfreq(width))[None, :]
    fy.setflags(write=False)
    fx.setflags(write=False)
    return fy, fx


def frequency_axes(height: int, width: int, *, half: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(fy, fx)`` broadcastable to the ``(H, W)`` or half ``(H, W//2+1)`` grid."""
    _check_shape(height, width)
    return _axes(height, width, half)


def radius_grid(
    height: int, width: int, *, half: bool = True, convention: RadiusConvention = "absolute"
) -> np.ndarray:
    """Radial frequency on the grid, in cycles/pixel (``absolute``) or ``r / R_MAX``."""
    fy, fx = frequency_axes(height, width, half=half)
    r = np.sqrt(fy**2 + fx**2)
    if convention == "normalized":
        return r / R_MAX
    if convention != "absolute":
        raise ValueError(f"unknown radius convention {convention!r}; use absolute|normalized")
    return r


def half_grid_multiplicity(height: int, width: int) -> np.ndarray:
    """How many full-grid bins each half-grid bin stands for (1 or 2).

    ``rfft2`` stores the columns ``0 … W//2``; every column except DC and (for even W) Nyquist has
    a conjugate partner that is not stored. Sums over the full spectrum are sums over the half
    grid weighted by this multiplicity (Parseval with orthonormal transforms).
    """
    _check_shape(height, width)
    mult = np.full((height, width // 2 + 1), 2.0)
    mult[:, 0] = 1.0
    if width % 2 == 0:
        mult[:, -1] = 1.0
    return mult


def full_from_half(values: np.ndarray, width: int) -> np.ndarray:
    """Expand a symmetric half-grid array ``(…, H, W//2+1)`` to the full ``(…, H, W)`` grid."""
    height = values.shape[-2]
    cols = np.arange(width)
    src_cols = np.where(cols <= width // 2, cols, width - cols)
    rows = np.arange(height)[:, None]
    src_rows = np.where(cols[None, :] <= width // 2, rows, (-rows) % height)
    return values[..., src_rows, src_cols[None, :]]
