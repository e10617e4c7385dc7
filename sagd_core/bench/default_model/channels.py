"""A gray image through the RGB default model: the gray channel is copied to R, G and B, the
restoration runs in RGB, and the mean of the three restored channels is read back (a gray image
holds equal channels, so this is its luminance; the three fills of the band are averaged).

The trusted bins stay exact: each channel keeps the input's trusted bins (DESIGN.md §4.1) and
their mean is the input's. Until the restore engine does this itself (the API refuses a gray
image against an RGB model with 422 ``model_channel_mismatch``), the benchmark calls it here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sagd_core.restore.engine import restore
from sagd_core.restore.models import ModelSet
from sagd_core.restore.request import RestoreRequest
from sagd_core.restore.result import RestoreResult


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 1)`` → ``(H, W, 3)`` with equal channels; RGB is returned as is."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    gray = arr if arr.ndim == 2 else arr[..., 0]
    return np.repeat(gray[..., None], 3, axis=-1)


def restore_any_channels(
    image: np.ndarray, request: RestoreRequest, models: ModelSet, **kwargs: Any
) -> RestoreResult:
    """:func:`~sagd_core.restore.engine.restore` with RGB models for a gray or an RGB image; a
    gray image comes back gray (``(H, W)``), its report saying ``gray_via_rgb: true``."""
    arr = np.asarray(image)
    gray = arr.ndim == 2 or arr.shape[2] == 1
    result = restore(as_rgb(arr), request, models, **kwargs)
    if not gray:
        return result
    shape = arr.shape

    def back(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float64).mean(axis=-1).reshape(shape).astype(x.dtype)

    uncertainty = None if result.uncertainty is None else back(result.uncertainty)
    return RestoreResult(
        image=back(result.image),
        unclipped=back(result.unclipped),
        report={**result.report, "gray_via_rgb": True},
        uncertainty=uncertainty,
    )


__all__ = ["as_rgb", "restore_any_channels"]
