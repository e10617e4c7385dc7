"""Per-image transforms on ``(H, W, C)`` float arrays: channel conversion, resize and crop.

Used when loading image folders and built-in datasets. Grayscale from RGB uses the ITU-R BT.601
luma weights (the same as OpenCV's ``COLOR_RGB2GRAY``); RGB from grayscale repeats the channel.
"""

from __future__ import annotations

import cv2
import numpy as np

LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def as_hwc(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as ``(H, W, C)``: a 2-D array gains a channel axis."""
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    return image


def is_gray(image: np.ndarray) -> bool:
    """True for one channel, or three identical channels (e.g. a gray+alpha PNG decoded as RGB)."""
    img = as_hwc(image)
    if img.shape[2] == 1:
        return True
    first = img[..., 0]
    return all(np.array_equal(first, img[..., k]) for k in range(1, img.shape[2]))


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Convert an ``(H, W, 1|3)`` image to ``channels`` (1 or 3) channels."""
    img = as_hwc(image)
    have = img.shape[2]
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if have not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {have}")
    if have == channels:
        return img
    if channels == 3:
        return np.repeat(img, 3, axis=2)
    gray = img.astype(np.float64) @ np.asarray(LUMA_WEIGHTS)
    return gray[:, :, None].astype(img.dtype)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bicubic interpolation when enlarging; the
    result is clipped to the input's value range (bicubic overshoots at edges)."""
    img = as_hwc(image)
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize to {height}×{width}")
    if (img.shape[0], img.shape[1]) == (height, width):
        return img
    shrinking = height * width < img.shape[0] * img.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    src = np.ascontiguousarray(img, dtype=np.float32)
    out = as_hwc(cv2.resize(src, (width, height), interpolation=interp))
    return np.clip(out, float(src.min()), float(src.max())).astype(img.dtype, copy=False)


def resize_and_center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size`` (keeping the aspect ratio), then cut the centred
    ``size × size`` square."""
    img = as_hwc(image)
    h, w = img.shape[:2]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    img = resize(img, new_h, new_w)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return img[top : top + size, left : left + size]


def hwc_to_chw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(as_hwc(image), (2, 0, 1)))


def chw_to_hwc(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3:
        raise ValueError(f"expected a (C, H, W) image, got shape {image.shape}")
    return np.ascontiguousarray(np.transpose(image, (1, 2, 0)))


__all__ = [
    "LUMA_WEIGHTS",
    "as_hwc",
    "chw_to_hwc",
    "hwc_to_chw",
    "is_gray",
    "resize",
    "resize_and_center_crop",
    "to_channels",
]
