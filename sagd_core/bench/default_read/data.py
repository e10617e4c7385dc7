"""The band reader's training draws: random 64-px gray crops of the ``natural`` TRAIN photos
(native and half scale, each colour channel a gray image) and of synthetic dead-leaves scenes,
under random flips/transposes, with noise in a random band at a random level.

No other package photo is used (the test photos and the rest are kept for independent
evaluation); the dead-leaves seeds start far from the benchmark's (1, 2, 101, 102).
"""

from __future__ import annotations

import numpy as np
import torch

from sagd_core.data.builtin import NATURAL_TRAIN_IMAGES, _photo
from sagd_core.data.dead_leaves import dead_leaves
from sagd_core.data.ranges import to_model_range

LEAVES_SEED = 20_000
LEAVES_SCENES = 24
#: Band levels ``s_b`` (log-uniform) and white levels ``σ_w`` (0 half the time, else
#: log-uniform), model range ``[-1, 1]``.
BAND_STD_RANGE = (0.03, 1.0)
WHITE_STD_RANGE = (0.005, 0.15)
MAX_BAND_SHARE = 0.5


def training_planes() -> list[np.ndarray]:
    """Every gray plane crops are drawn from, float32 ``(H, W)`` in ``[-1, 1]``."""
    planes: list[np.ndarray] = []
    for name in NATURAL_TRAIN_IMAGES:
        photo = np.asarray(_photo(name, 3), np.float32)
        for plane in photo:
            planes.append(plane)
            h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
            planes.append(plane[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))
    for i in range(LEAVES_SCENES):
        unit = dead_leaves(256, 1 if i % 2 == 0 else 3, seed=LEAVES_SEED + i)
        scene = to_model_range(np.asarray(unit, np.float32))
        planes.extend([scene] if scene.ndim == 2 else list(np.moveaxis(scene, -1, 0)))
    return planes


def crops(planes: list[np.ndarray], count: int, patch: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random ``patch``-px crops ``(count, 1, patch, patch)`` under random dihedral
    transforms (photos weighted by their area, the scenes as a group like one photo)."""
    weights = np.array([p.size for p in planes], np.float64)
    weights /= weights.sum()
    out = np.empty((count, 1, patch, patch), np.float32)
    for k, index in enumerate(rng.choice(len(planes), count, p=weights)):
        plane = planes[index]
        top = rng.integers(0, plane.shape[0] - patch + 1)
        left = rng.integers(0, plane.shape[1] - patch + 1)
        view = np.rot90(plane[top : top + patch, left : left + patch], int(rng.integers(4)))
        out[k, 0] = view[:, ::-1] if rng.random() < 0.5 else view
    return out


def random_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random hard band on the full ``size × size`` grid: an annulus, a line wedge (stripes),
    a box or a few notches, or the union of two; conjugate-symmetric, DC outside, at most
    :data:`MAX_BAND_SHARE` of the spectrum and at least one bin."""
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    r = np.hypot(fy, fx)
    while True:
        mask = np.zeros((size, size), bool)
        for _ in range(2 if rng.random() < 0.25 else 1):
            mask |= _one_region(fy, fx, r, rng)
        mask[0, 0] = False
        share = mask.mean()
        if mask.any() and share <= MAX_BAND_SHARE:
            return mask.astype(np.float32)


def _one_region(
    fy: np.ndarray, fx: np.ndarray, r: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    kind = rng.choice(["annulus", "wedge", "box", "notches"], p=[0.45, 0.25, 0.15, 0.15])
    if kind == "annulus":
        low = rng.uniform(0.02, 0.5)
        return (r >= low) & (r < low + rng.uniform(0.03, 0.3))
    if kind == "wedge":
        angle = rng.uniform(0, 180)
        theta = np.degrees(np.arctan2(fy, fx))
        delta = np.abs((theta - angle + 90.0) % 180.0 - 90.0)
        return (
            (delta <= rng.uniform(0.5, 12.0))
            & (r >= rng.uniform(0, 0.1))
            & (r < rng.uniform(0.3, 0.71))
        )
    if kind == "box":
        y0, x0 = rng.uniform(-0.5, 0.4, 2)
        y1, x1 = y0 + rng.uniform(0.03, 0.3), x0 + rng.uniform(0.03, 0.3)
        inside = (fy >= y0) & (fy < y1) & (fx >= x0) & (fx < x1)
        return inside | ((-fy >= y0) & (-fy < y1) & (-fx >= x0) & (-fx < x1))
    mask = np.zeros(r.shape, bool)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(-0.5, 0.5, 2)
        radius = rng.uniform(0.01, 0.06)
        mask |= np.hypot(fy - cy, fx - cx) < radius
        mask |= np.hypot(fy + cy, fx + cx) < radius
    return mask


def log_uniform(low: float, high: float, count: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), count))


def draw_batch(
    planes: list[np.ndarray], batch: int, patch: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, y, mask, band_std, white_std)``: clean crops, their noisy versions, the masks
    ``(B, 1, p, p)`` and the levels ``(B,)``."""
    from sagd_core.models.band_reader import band_part

    x = torch.from_numpy(crops(planes, batch, patch, rng))
    mask = torch.from_numpy(np.stack([random_mask(patch, rng) for _ in range(batch)])[:, None])
    band_std = torch.from_numpy(log_uniform(*BAND_STD_RANGE, batch, rng)).float()
    white = log_uniform(*WHITE_STD_RANGE, batch, rng) * (rng.random(batch) < 0.5)
    white_std = torch.from_numpy(white).float()
    eps = torch.from_numpy(rng.standard_normal((2, batch, 1, patch, patch)).astype(np.float32))
    y = (
        x
        + band_std.view(-1, 1, 1, 1) * band_part(eps[0], mask)
        + white_std.view(-1, 1, 1, 1) * eps[1]
    )
    return x, y, mask, band_std, white_std
