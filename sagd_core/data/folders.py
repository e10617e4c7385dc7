"""Loading a folder of images as one ``(N, C, H, W)`` array in ``[-1, 1]``.

Files are those whose suffix is ``.png``, ``.jpg``, ``.jpeg``, ``.tif`` or ``.tiff`` (any case);
hidden files (name starting with ``.``) and everything else are skipped. The folder is read flat
by default; ``recursive=True`` descends into sub-folders (hidden ones skipped). The order is the
sorted relative path, so it is the same on every machine. Each file is read by
:func:`sagd_core.data.image_files.read_image` (formats by magic bytes, pixel limit checked from the
header before decoding, :class:`ImageReadError` naming the file on any failure).

Sizes: without ``image_size`` every image must have the same size. With ``image_size`` each image
is resized so its shorter side is ``image_size`` and the centred square is kept. To train on
patches of large images instead, load them at full size one by one and use
:func:`sagd_core.data.patches.random_patches`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sagd_core.data.image_files import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    read_image,
)
from sagd_core.data.ranges import to_model_range
from sagd_core.data.transforms import hwc_to_chw, is_gray, resize_and_center_crop, to_channels

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})


def list_image_files(path: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Image files under ``path`` in sorted relative-path order (see the module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    files = []
    for file in candidates:
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
            files.append(file)
    return sorted(files, key=lambda f: f.relative_to(root).as_posix())


def load_image_folder(
    path: str | os.PathLike[str],
    *,
    image_size: int | None = None,
    channels: int | None = None,
    max_images: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    recursive: bool = False,
) -> np.ndarray:
    """Read the images of a folder into float32 ``(N, C, H, W)`` in ``[-1, 1]``.

    ``channels``: 1 or 3; ``None`` gives 3 if any image has colour, else 1 (an RGB file whose
    three channels are equal counts as gray). ``max_images`` keeps the first files in sorted
    order. ``max_pixels`` and ``max_bytes`` bound each file.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels}")
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be positive, got {max_images}")
    files = list_image_files(path, recursive=recursive)
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(f"no images ({suffixes}) in {Path(path)}")
    if max_images is not None:
        files = files[:max_images]
    images: list[np.ndarray] = []
    for file in files:
        img = read_image(file, max_pixels=max_pixels, max_bytes=max_bytes)
        if image_size is not None:
            img = resize_and_center_crop(img, image_size)
        elif images and img.shape[:2] != images[0].shape[:2]:
            raise ValueError(
                f"{file} is {img.shape[1]}×{img.shape[0]} but {files[0]} is "
                f"{images[0].shape[1]}×{images[0].shape[0]}; pass image_size to resize"
            )
        images.append(img)
    if channels is None:
        channels = 1 if all(is_gray(img) for img in images) else 3
    out = np.empty((len(images), channels, *images[0].shape[:2]), dtype=np.float32)
    for k, img in enumerate(images):
        out[k] = to_model_range(hwc_to_chw(to_channels(img, channels)))
    logger.info("loaded %d images of %s from %s", len(images), out.shape[1:], path)
    return out


__all__ = ["IMAGE_SUFFIXES", "list_image_files", "load_image_folder"]
