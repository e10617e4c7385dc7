"""Turn a :class:`DataConfig` into the training array ``(N, C, H, W)`` in ``[-1, 1]``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sagd_core.data import BUILTIN_DATASETS, apply_corruption, load_builtin, load_image_folder
from sagd_core.data.corruptions import parse_corruption
from sagd_core.data.ranges import to_model_range
from sagd_core.data.transforms import hwc_to_chw, resize_and_center_crop, to_channels
from sagd_core.training.config import DataConfig

logger = logging.getLogger(__name__)


def load_clean_images(data: DataConfig) -> np.ndarray:
    """The clean images named by ``data.source`` (built-in name or folder path)."""
    if data.source in BUILTIN_DATASETS:
        return load_builtin(
            data.source,
            image_size=data.image_size,
            channels=data.channels,
            split=data.split,
            count=data.count,
        )
    path = Path(data.source)
    if not path.exists():
        raise FileNotFoundError(
            f"dataset {data.source!r} is neither a built-in ({', '.join(BUILTIN_DATASETS)}) "
            "nor an existing folder"
        )
    return load_image_folder(
        path, image_size=data.image_size, channels=data.channels, max_images=data.count
    )


def load_training_images(data: DataConfig) -> np.ndarray:
    """Clean images, corrupted once (deterministically) when ``data.corruption`` is set."""
    images = load_clean_images(data)
    if data.corruption is not None:
        corruption = parse_corruption(data.corruption)
        images = apply_corruption(images, corruption, seed=data.corruption_seed)
        logger.info("training on %d images corrupted by %s", len(images), corruption.kind)
    return images.astype(np.float32, copy=False)


def prepare_uploaded(images: list[np.ndarray], image_size: int) -> tuple[np.ndarray, int]:
    """Decoded ``(H, W, C)`` images in ``[0, 1]`` as a training array ``(N, C, S, S)`` in
    ``[-1, 1]`` (resized and centre-cropped to ``image_size``) and its channel count: RGB when
    any image is, else gray."""
    channels = 3 if any(image.shape[2] == 3 for image in images) else 1
    prepared = [
        hwc_to_chw(to_channels(resize_and_center_crop(image, image_size), channels))
        for image in images
    ]
    return to_model_range(np.stack(prepared).astype(np.float32)), channels
