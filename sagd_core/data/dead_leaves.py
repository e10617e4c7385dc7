"""Dead-leaves images: synthetic scenes with the statistics of natural photos (occluding
objects of power-law sizes, hence a ~1/f² power spectrum and sharp edges), for benchmarks that
must not use other package photos."""

from __future__ import annotations

import numpy as np

#: Disk radii follow ``p(r) ∝ r⁻³`` between these fractions of the image side.
_R_MIN, _R_MAX = 0.01, 0.25


def dead_leaves(
    size: int, channels: int = 1, *, seed: int = 0, leaves: int | None = None
) -> np.ndarray:
    """A ``size × size`` dead-leaves image, ``(H, W)`` or ``(H, W, 3)`` float64 in ``[0, 1]``:
    disks dropped front to back until the canvas is covered (or ``leaves`` are drawn), each a
    flat colour with a faint linear shading so that areas are not perfectly flat."""
    if size < 8 or channels not in (1, 3):
        raise ValueError(f"need size ≥ 8 and 1 or 3 channels, got {size}, {channels}")
    rng = np.random.default_rng(seed)
    canvas = np.zeros((size, size, channels))
    covered = np.zeros((size, size), dtype=bool)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    budget = leaves if leaves is not None else 40 * size
    lo, hi = _R_MIN * size, _R_MAX * size
    for _ in range(budget):
        # inverse CDF of p(r) ∝ r^-3 on [lo, hi]
        u = rng.random()
        r = 1.0 / np.sqrt(1.0 / lo**2 - u * (1.0 / lo**2 - 1.0 / hi**2))
        cy, cx = rng.uniform(-r, size + r, 2)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, size)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, size)
        if y0 >= y1 or x0 >= x1:
            continue
        sub = (yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2 < r**2
        new = sub & ~covered[y0:y1, x0:x1]
        if not new.any():
            continue
        colour = rng.random(channels)
        slope = rng.normal(0, 0.15 / max(r, 1.0), 2)
        shade = slope[0] * (yy[y0:y1, x0:x1] - cy) + slope[1] * (xx[y0:y1, x0:x1] - cx)
        value = np.clip(colour[None, None, :] + shade[..., None], 0.0, 1.0)
        canvas[y0:y1, x0:x1][new] = value[new]
        covered[y0:y1, x0:x1] |= new
        if covered.all():
            break
    canvas[~covered] = canvas[covered].mean(axis=0) if covered.any() else 0.5
    out = canvas[..., 0] if channels == 1 else canvas
    return out


__all__ = ["dead_leaves"]
