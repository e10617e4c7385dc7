"""Overlapping tiles for large images (DESIGN.md §4.5).

The image is cut into tiles of one size (the last row/column of tiles is shifted to end at the
border, so every tile has the same shape and the band mask is computed once per tile shape);
each tile is processed independently and the outputs are blended with separable raised-cosine
weights over the overlaps. The caller enforces out-of-band consistency on the *whole* image
afterwards, with the mask computed at the whole image's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

TileFn = Callable[[torch.Tensor], torch.Tensor]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``[0, size)`` with tiles of ``tile`` pixels overlapping by at least
    ``overlap`` pixels; one tile when ``size ≤ tile``."""
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile ≥ 1 and 0 ≤ overlap < tile, got {tile}, {overlap}")
    if size <= tile:
        return [0]
    stride = tile - overlap
    n = math.ceil((size - tile) / stride) + 1
    starts = [min(i * stride, size - tile) for i in range(n)]
    return sorted(set(starts))


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    xs = tile_starts(width, tile, overlap)
    return [(y, x) for y in tile_starts(height, tile, overlap) for x in xs]


def tile_shape(height: int, width: int, tile: int) -> tuple[int, int]:
    return min(height, tile), min(width, tile)


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blend weights: raised-cosine ramps of ``overlap`` pixels at inner edges, strictly
    positive everywhere so every pixel has weight."""
    w = torch.ones(length, dtype=torch.float64)
    if overlap <= 0:
        return w
    k = torch.arange(overlap, dtype=torch.float64)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (k + 1) / (overlap + 1))
    if not at_start:
        w[:overlap] = torch.minimum(w[:overlap], ramp)
    if not at_end:
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def run_tiled(
    fn: TileFn, x: torch.Tensor, tile: int, overlap: int, *, channels: int | None = None
) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` (…, C, H, W) and blend the outputs.

    ``fn`` must map a tile to a tensor of the same shape, or with ``channels`` channels instead
    of ``C`` when given (a network whose outputs differ from its inputs). With one tile this is
    ``fn(x)``.
    """
    h, w = x.shape[-2:]
    th, tw = tile_shape(h, w, tile)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    if len(ys) == 1 and len(xs) == 1:
        return fn(x)
    shape = x.shape if channels is None else (*x.shape[:-3], channels, h, w)
    acc = torch.zeros(shape, dtype=torch.float64, device=x.device)
    weight = torch.zeros((h, w), dtype=torch.float64, device=x.device)
    oy, ox = min(overlap, th - 1), min(overlap, tw - 1)
    for y0 in ys:
        wy = _ramp(th, oy, y0 == 0, y0 + th >= h)
        for x0 in xs:
            wx = _ramp(tw, ox, x0 == 0, x0 + tw >= w)
            out = fn(x[..., y0 : y0 + th, x0 : x0 + tw])
            if out.shape != acc[..., y0 : y0 + th, x0 : x0 + tw].shape:
                raise ValueError(f"tile function changed the shape to {tuple(out.shape)}")
            wt = (wy[:, None] * wx[None, :]).to(x.device)
            acc[..., y0 : y0 + th, x0 : x0 + tw] += out.to(torch.float64) * wt
            weight[y0 : y0 + th, x0 : x0 + tw] += wt
    return (acc / weight).to(x.dtype)


__all__ = ["TileFn", "run_tiled", "tile_grid", "tile_shape", "tile_starts"]
