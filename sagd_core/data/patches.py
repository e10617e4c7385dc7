"""Random square patches from images of any size.

Used for the ``natural`` built-in dataset and for training on large images: a model trained on
``p × p`` patches is fully convolutional and restores larger images by tiling (DESIGN.md §4.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def random_patches(
    images: np.ndarray | Sequence[np.ndarray], patch_size: int, count: int, *, seed: int = 0
) -> np.ndarray:
    """Cut ``count`` random ``patch_size × patch_size`` patches from ``images``.

    ``images`` is an ``(N, C, H, W)`` array or a sequence of ``(C, H_i, W_i)`` arrays that share
    ``C`` (sizes may differ). Each patch picks its source image uniformly (not by area, so one
    large image does not dominate) and a uniform position inside it. Deterministic given
    ``seed``, and prefix-stable: the first ``k`` patches do not depend on ``count``.
    Returns ``(count, C, patch_size, patch_size)`` in the input dtype.
    """
    sources = list(images)
    if not sources:
        raise ValueError("no images to cut patches from")
    if patch_size < 1:
        raise ValueError(f"patch_size must be positive, got {patch_size}")
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    channels = {src.shape[0] for src in sources if src.ndim == 3}
    if len(channels) != 1 or any(src.ndim != 3 for src in sources):
        raise ValueError("images must be (C, H, W) arrays with the same number of channels")
    for i, src in enumerate(sources):
        if min(src.shape[1:]) < patch_size:
            raise ValueError(
                f"image {i} is {src.shape[1]}×{src.shape[2]}, smaller than the "
                f"{patch_size}×{patch_size} patch"
            )
    rng = np.random.default_rng(seed)
    out = np.empty((count, channels.pop(), patch_size, patch_size), dtype=sources[0].dtype)
    for k in range(count):
        src = sources[int(rng.integers(len(sources)))]
        top = int(rng.integers(src.shape[1] - patch_size + 1))
        left = int(rng.integers(src.shape[2] - patch_size + 1))
        out[k] = src[:, top : top + patch_size, left : left + patch_size]
    return out


__all__ = ["random_patches"]
