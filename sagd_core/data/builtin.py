"""Built-in datasets made from package data only: nothing is downloaded (DESIGN.md §6).

- ``digits``: scikit-learn's 1,797 handwritten digits (8×8, values 0..16), upscaled with bicubic
  interpolation and clipped; grayscale. Our offline stand-in for MNIST.
- ``lfw``: the 100 faces of scikit-image's ``lfw_subset`` (25×25 grayscale), resized. The other
  100 images of that subset are random background crops, not faces, and are left out.
- ``natural``: random ``image_size`` patches, at native resolution, of photographs bundled with
  scikit-image (no pooch download). Training and test patches come from *different* photos, so
  test patches never share a pixel with training patches.

Every dataset has a fixed held-out split that does not depend on ``seed``: for ``digits`` and
``lfw`` the last 20 % of a permutation drawn once with seed 0; for ``natural`` the photos in
:data:`NATURAL_TEST_IMAGES`. ``seed`` only orders the images of ``digits``/``lfw`` and places the
patches of ``natural``. Arrays are float32 ``(N, C, H, W)`` in ``[-1, 1]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import numpy as np

from sagd_core.data.patches import random_patches
from sagd_core.data.ranges import to_model_range
from sagd_core.data.transforms import hwc_to_chw, resize, to_channels

logger = logging.getLogger(__name__)

Split = Literal["train", "test", "all"]

BUILTIN_DATASETS: tuple[str, ...] = ("digits", "lfw", "natural")

#: Photos (scikit-image names) whose patches form the ``natural`` training split.
NATURAL_TRAIN_IMAGES: tuple[str, ...] = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "grass",
    "gravel",
    "immunohistochemistry",
    "rocket",
)
#: Photos reserved for the ``natural`` test split.
NATURAL_TEST_IMAGES: tuple[str, ...] = ("clock", "coins", "moon")

#: Default patch counts of ``natural`` when ``count`` is not given.
NATURAL_DEFAULT_COUNT = {"train": 4096, "test": 1024, "all": 5120}

MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 256
#: Largest ``natural`` patch: the smallest bundled photo (clock) is 300 pixels high.
MAX_NATURAL_PATCH = 256
_TEST_FRACTION = 0.2
_SPLIT_SEED = 0  # fixed forever: changing it would mix test images into training


def load_builtin(
    name: str,
    *,
    image_size: int,
    channels: int | None = None,
    split: Split = "train",
    seed: int = 0,
    count: int | None = None,
) -> np.ndarray:
    """Load a built-in dataset as float32 ``(N, C, image_size, image_size)`` in ``[-1, 1]``.

    ``channels`` is 1 or 3 (``None``: 1, all built-ins are grayscale at heart; 3 repeats gray
    channels, and ``natural`` then uses the colour photos in colour). ``count`` is the number of
    patches for ``natural`` (default :data:`NATURAL_DEFAULT_COUNT`); for ``digits``/``lfw`` it
    keeps the first ``count`` images of the split (an error if the split holds fewer).
    """
    if name not in BUILTIN_DATASETS:
        raise ValueError(
            f"unknown built-in dataset {name!r}; valid names: {', '.join(BUILTIN_DATASETS)}"
        )
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(
            f"image_size must be in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {image_size}"
        )
    out_channels = 1 if channels is None else channels
    if out_channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if count is not None and count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if name == "natural":
        n = NATURAL_DEFAULT_COUNT[split] if count is None else count
        return _natural(image_size, out_channels, split, n, seed)
    loader = _digits_unit if name == "digits" else _lfw_faces_unit
    return _fixed_set(name, loader, image_size, out_channels, split, seed, count)


def split_indices(n: int, split: Split) -> np.ndarray:
    """Indices of ``split`` among ``n`` images: a fixed permutation (seed 0), test = last 20 %."""
    order = np.random.default_rng(_SPLIT_SEED).permutation(n)
    n_test = round(n * _TEST_FRACTION)
    if split == "train":
        return np.sort(order[: n - n_test])
    if split == "test":
        return np.sort(order[n - n_test :])
    return np.arange(n)


def _fixed_set(
    name: str,
    loader: Callable[[], np.ndarray],
    image_size: int,
    channels: int,
    split: Split,
    seed: int,
    count: int | None,
) -> np.ndarray:
    images = loader()  # (N, h, w) float in [0, 1]
    idx = split_indices(len(images), split)
    idx = idx[np.random.default_rng(seed).permutation(len(idx))]
    if count is not None:
        if count > len(idx):
            raise ValueError(f"{name!r} {split} split holds {len(idx)} images, asked for {count}")
        idx = idx[:count]
    out = np.empty((len(idx), channels, image_size, image_size), dtype=np.float32)
    for k, i in enumerate(idx):
        img = to_channels(resize(images[i], image_size, image_size), channels)
        out[k] = to_model_range(hwc_to_chw(img))
    return out


@lru_cache(maxsize=1)
def _digits_unit() -> np.ndarray:
    from sklearn.datasets import load_digits  # local: scikit-learn is slow to import

    images = load_digits().images.astype(np.float64) / 16.0
    images.setflags(write=False)
    return images


@lru_cache(maxsize=1)
def _lfw_faces_unit() -> np.ndarray:
    from skimage.data import lfw_subset

    faces = np.asarray(lfw_subset()[:100], dtype=np.float64)  # the first 100 are the faces
    if faces.max() > 1.0:  # older scikit-image returned uint8
        faces = faces / 255.0
    faces.setflags(write=False)
    return faces


@lru_cache(maxsize=32)
def _photo(name: str, channels: int) -> np.ndarray:
    """A bundled scikit-image photo as read-only float32 ``(C, H, W)`` in ``[-1, 1]``."""
    import skimage.data

    pixels = np.asarray(getattr(skimage.data, name)())
    if pixels.dtype != np.uint8:
        raise ValueError(f"scikit-image photo {name!r} is {pixels.dtype}, expected uint8")
    unit = pixels.astype(np.float32) / 255.0
    unit = unit[..., :3] if unit.ndim == 3 else unit
    chw = to_model_range(hwc_to_chw(to_channels(unit, channels)))
    chw.setflags(write=False)
    return chw


def _natural(image_size: int, channels: int, split: Split, count: int, seed: int) -> np.ndarray:
    if image_size > MAX_NATURAL_PATCH:
        raise ValueError(f"natural patches are at most {MAX_NATURAL_PATCH} px, got {image_size}")
    names = {
        "train": NATURAL_TRAIN_IMAGES,
        "test": NATURAL_TEST_IMAGES,
        "all": NATURAL_TRAIN_IMAGES + NATURAL_TEST_IMAGES,
    }[split]
    sources = [_photo(n, channels) for n in names]
    # Separate streams per split so train and test positions are not correlated.
    split_code = {"train": 0, "test": 1, "all": 2}[split]
    patch_seed = int(np.random.SeedSequence([seed, split_code]).generate_state(1)[0])
    logger.debug("natural %s: %d patches of %d px from %s", split, count, image_size, names)
    return random_patches(sources, image_size, count, seed=patch_seed)


__all__ = [
    "BUILTIN_DATASETS",
    "NATURAL_TEST_IMAGES",
    "NATURAL_TRAIN_IMAGES",
    "load_builtin",
    "split_indices",
]
