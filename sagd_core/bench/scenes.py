"""The scenes the real-size benchmarks share: an image with a name, and centre crops of the
bundled ``natural`` photos (upsampled where the photo is smaller than the side)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sagd_core.data.builtin import _photo

#: Scenes are mapped into this range so that added corruption does not clip.
LOW, HIGH = 0.15, 0.85


@dataclass(frozen=True)
class Scene:
    name: str
    image: np.ndarray  # (H, W) or (H, W, 3) in [LOW, HIGH]

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    @property
    def channels(self) -> int:
        return 1 if self.image.ndim == 2 else 3


def photo_crop(name: str, size: int, channels: int = 1) -> np.ndarray:
    """Centre crop of a bundled photo, ``(H, W)`` or ``(H, W, 3)`` in ``[0, 1]``, upsampled
    (bicubic) to ``size`` when the photo is smaller."""
    chw = _photo(name, channels)
    h, w = chw.shape[1:]
    side = min(size, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = chw[:, top : top + side, left : left + side]
    unit = np.moveaxis((crop.astype(np.float64) + 1.0) / 2.0, 0, -1)
    if side < size:
        unit = np.asarray(cv2.resize(unit, (size, size), interpolation=cv2.INTER_CUBIC), np.float64)
    unit = np.asarray(unit, np.float64).reshape(size, size, -1)
    return unit[..., 0] if channels == 1 else unit


__all__ = ["HIGH", "LOW", "Scene", "photo_crop"]
