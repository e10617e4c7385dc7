"""Validating the image a caller sends and converting it to and from the model range.

The public contract takes ``(H, W)`` or ``(H, W, C)`` arrays (C = 1 or 3) with values in ``[0, 1]``
(floats) or 8/16-bit integers; the library works on ``(C, H, W)`` in ``[-1, 1]`` (DESIGN.md §1).
Corrupted images may overshoot ``[0, 1]`` slightly, so float values are not required to lie in
it, only to be finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sagd_core.data.ranges import from_model_range, to_model_range
from sagd_core.restore.errors import RestoreError

MIN_SIDE = 8
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class PreparedImage:
    """The image as ``(C, H, W)`` float64 in model range, and how to give it back."""

    chw: np.ndarray
    squeeze_channel: bool  # the caller sent (H, W)

    @property
    def channels(self) -> int:
        return int(self.chw.shape[0])

    @property
    def height(self) -> int:
        return int(self.chw.shape[1])

    @property
    def width(self) -> int:
        return int(self.chw.shape[2])

    def to_caller(self, chw: np.ndarray, *, clip: bool) -> np.ndarray:
        """Model-range ``(C, H, W)`` back to the caller's layout, float32 in ``[0, 1]``."""
        return self.layout(from_model_range(chw, clip=clip))

    def layout(self, chw: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` to the caller's ``(H, W)`` or ``(H, W, C)`` layout, float32."""
        hwc = np.ascontiguousarray(np.transpose(chw, (1, 2, 0)), dtype=np.float32)
        return hwc[:, :, 0] if self.squeeze_channel else hwc


def prepare_image(image: object) -> PreparedImage:
    """Check ``image`` and convert it; raises :class:`RestoreError` with a readable message."""
    if not isinstance(image, np.ndarray):
        raise RestoreError(f"the image must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise RestoreError(
            f"the image must be (H, W) or (H, W, C) with C = 1 or 3, got shape {image.shape}"
        )
    if image.ndim == 3 and image.shape[2] not in (1, 3):
        raise RestoreError(
            f"the image has {image.shape[2]} channels; only 1 (gray) or 3 (RGB) are supported"
        )
    h, w = int(image.shape[0]), int(image.shape[1])
    if h < MIN_SIDE or w < MIN_SIDE:
        raise RestoreError(f"the image is {h}×{w}; both sides must be at least {MIN_SIDE} pixels")
    if h * w > MAX_PIXELS:
        raise RestoreError(f"the image has {h * w} pixels, more than the limit of {MAX_PIXELS}")
    if image.dtype == np.bool_ or not (
        np.issubdtype(image.dtype, np.floating) or image.dtype in (np.uint8, np.uint16)
    ):
        raise RestoreError(f"unsupported pixel type {image.dtype}; use float, uint8 or uint16")
    if np.issubdtype(image.dtype, np.floating) and not np.all(np.isfinite(image)):
        raise RestoreError("the image contains non-finite values (NaN or infinity)")
    if float(np.ptp(image)) == 0.0:
        raise RestoreError("the image is constant: there is nothing to restore")
    squeeze = image.ndim == 2
    hwc = image[:, :, None] if squeeze else image
    chw = np.transpose(to_model_range(hwc), (2, 0, 1)).astype(np.float64)
    return PreparedImage(chw=np.ascontiguousarray(chw), squeeze_channel=squeeze)


__all__ = ["MAX_PIXELS", "MIN_SIDE", "PreparedImage", "prepare_image"]
