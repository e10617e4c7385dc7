"""The default model's training images: patches of the ``natural`` TRAIN split (native and half
scale) and of synthetic dead-leaves scenes, every patch under a random flip/transpose.

No other package photo is used (the ``natural`` test photos and the rest are kept for independent
evaluation), and the dead-leaves seeds start far from the real-size benchmark's (1 and 2). The mix
is :data:`sagd_core.training.presets.DEFAULT_DATA`; everything is deterministic given its seeds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sagd_core.data import load_builtin, random_patches, to_model_range
from sagd_core.data.dead_leaves import dead_leaves
from sagd_core.training.presets import DEFAULT_DATA, DEFAULT_PATCH


def dihedral(patches: np.ndarray, seed: int) -> np.ndarray:
    """Each ``(C, p, p)`` patch of ``(N, C, p, p)`` under one of the 8 flips/transposes of the
    square, drawn with ``seed`` (a copy; the input is not changed)."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(patches)
    for k, (turns, flip) in enumerate(
        zip(rng.integers(0, 4, len(patches)), rng.random(len(patches)) < 0.5, strict=True)
    ):
        view = np.rot90(patches[k], int(turns), axes=(1, 2))
        out[k] = view[:, :, ::-1] if flip else view
    return out


def half_scale(patches: np.ndarray) -> np.ndarray:
    """``(N, C, 2p, 2p)`` → ``(N, C, p, p)`` by averaging 2×2 blocks (an area downscale)."""
    n, c, h, w = patches.shape
    return patches.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5)).astype(patches.dtype)


def leaves_patches(mix: Mapping[str, int], patch: int) -> np.ndarray:
    """Patches of ``mix["leaves_scenes"]`` dead-leaves scenes (even ones gray, copied to three
    channels; odd ones RGB), float32 ``(N, 3, patch, patch)`` in ``[-1, 1]``."""
    size, first = mix["leaves_scene_size"], mix["leaves_seed"]
    scenes = []
    for i in range(mix["leaves_scenes"]):
        channels = 1 if i % 2 == 0 else 3
        unit = dead_leaves(size, channels, seed=first + i)
        rgb = np.repeat(unit[..., None], 3, axis=-1) if channels == 1 else unit
        scenes.append(to_model_range(np.moveaxis(rgb, -1, 0).astype(np.float32)))
    return random_patches(scenes, patch, mix["leaves_patches"], seed=first)


def default_training_images(
    mix: Mapping[str, int] = DEFAULT_DATA, patch: int = DEFAULT_PATCH
) -> np.ndarray:
    """The whole training array, float32 ``(N, 3, patch, patch)`` in ``[-1, 1]``: natural
    patches (native scale, then half scale), then dead-leaves patches, each under a random
    dihedral transform."""
    seed = mix["seed"]
    native = load_builtin(
        "natural",
        image_size=patch,
        channels=3,
        split="train",
        seed=seed,
        count=mix["natural_patches"],
    )
    parts = [native]
    if mix["natural_half_scale_patches"]:
        wide = load_builtin(
            "natural",
            image_size=2 * patch,
            channels=3,
            split="train",
            seed=seed + 1,
            count=mix["natural_half_scale_patches"],
        )
        parts.append(half_scale(wide))
    if mix["leaves_patches"]:
        parts.append(leaves_patches(mix, patch))
    images = np.concatenate(parts).astype(np.float32, copy=False)
    return dihedral(images, seed + 2)


__all__ = ["default_training_images", "dihedral", "half_scale", "leaves_patches"]
