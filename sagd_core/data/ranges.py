"""Conversions between stored pixel values and the model range ``[-1, 1]`` (DESIGN.md §1).

Inside the library images are float32 ``(N, C, H, W)`` arrays in ``[-1, 1]``; files and previews
use ``[0, 1]`` floats or 8/16-bit integers. These two functions are the only place the affine map
``x_model = 2 x_unit − 1`` is written.
"""

from __future__ import annotations

import numpy as np

_INTEGER_PEAKS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_model_range(x: np.ndarray) -> np.ndarray:
    """Map uint8 / uint16 pixels, or floats in ``[0, 1]``, to float32 in ``[-1, 1]``.

    Integer inputs are divided by their peak (255 or 65535); float inputs are taken to be in
    ``[0, 1]`` already and are not clipped (out-of-range values stay out of range).
    """
    arr = np.asarray(x)
    peak = _INTEGER_PEAKS.get(arr.dtype)
    if peak is not None:
        unit = arr.astype(np.float64) / peak
    elif np.issubdtype(arr.dtype, np.floating):
        unit = arr.astype(np.float64, copy=False)
    else:
        raise ValueError(f"expected uint8, uint16 or float pixels, got dtype {arr.dtype}")
    return (2.0 * unit - 1.0).astype(np.float32)


def from_model_range(x: np.ndarray, *, clip: bool = False) -> np.ndarray:
    """Map model-range values ``[-1, 1]`` to float32 ``[0, 1]``; ``clip`` cuts what falls outside
    (corrupted images do: P1's corruption is not clipped, DESIGN.md §6)."""
    arr = np.asarray(x, dtype=np.float64)
    unit = (arr + 1.0) / 2.0
    if clip:
        unit = np.clip(unit, 0.0, 1.0)
    return unit.astype(np.float32)


__all__ = ["from_model_range", "to_model_range"]
