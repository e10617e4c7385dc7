"""Low-resolution previews of a learned restoration while it samples.

A caller that passes ``preview=`` to :func:`sagd_core.restore.restore` gets, now and then, the
current estimate of the whole image: the sampler's x̂₀ (the mean over the samples), mapped from
the model range [-1, 1] to [0, 1], as a float32 ``(h, w, C)`` array whose longest side is at most
:data:`PREVIEW_MAX_SIDE` pixels. The caller decides how often (:meth:`PreviewSink.due`, asked at
every step, must be cheap); the tensor is only reduced and copied off the device when it is due.

Tiled restorations run one tile's whole chain after another, so no step ever sees the whole
image: :class:`PreviewCanvas` keeps a low-resolution canvas, starts it from the input, and pastes
each tile's x̂₀ where that tile lies. A tile's chain starts at step index 0, in
:func:`sagd_core.restore.tiling.tile_grid` order (a method with two passes, the SAGD denoise then
fill, goes round the grid twice). An x̂₀ of any other shape is ignored.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from sagd_core.restore.tiling import tile_grid, tile_shape
from sagd_core.samplers.common import StepInfo

#: The longest side of a preview, in pixels (smaller images keep their size).
PREVIEW_MAX_SIDE = 128


class PreviewSink(Protocol):
    """Where previews go (the worker's throttled writer, a test's list)."""

    def due(self) -> bool:
        """Whether a preview is wanted now (asked at every sampler step)."""
        ...

    def __call__(self, image: np.ndarray) -> None:
        """Take one preview: float32 ``(h, w, C)`` in [0, 1]."""
        ...


def preview_size(height: int, width: int, max_side: int = PREVIEW_MAX_SIDE) -> tuple[int, int]:
    """``(h, w)`` of the preview of a ``height × width`` image: the aspect ratio kept, the
    longest side at most ``max_side``, no side below 1."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _span(start: int, length: int, size: int, small: int) -> tuple[int, int]:
    """Where ``[start, start + length)`` of ``size`` pixels lands on ``small`` pixels."""
    lo = min(round(start * small / size), small - 1)
    return lo, max(lo + 1, round((start + length) * small / size))


class PreviewCanvas:
    """The whole image's low-resolution estimate, updated from each step's (tile) x̂₀.

    ``y``: the input ``(1, C, H, W)`` in the model range (the canvas starts from it);
    ``tile``, ``overlap``: the restoration's tiling."""

    def __init__(
        self,
        sink: PreviewSink,
        y: torch.Tensor,
        *,
        tile: int,
        overlap: int,
        max_side: int = PREVIEW_MAX_SIDE,
    ) -> None:
        self.sink = sink
        self.height, self.width = int(y.shape[-2]), int(y.shape[-1])
        self.size = preview_size(self.height, self.width, max_side)
        self.tile = tile_shape(self.height, self.width, tile)
        self.grid = tile_grid(self.height, self.width, tile, overlap)
        self.canvas = self._reduce(y[:1])
        self.cursor = -1  # the tile whose chain runs (index in ``grid``)

    def _reduce(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """The mean over the samples of ``x`` ``(K, C, h, w)``, area-resampled to ``size``."""
        mean = x.detach().to(torch.float32).mean(dim=0, keepdim=True)
        return F.interpolate(mean, size=size or self.size, mode="area")[0]

    def on_step(self, info: StepInfo) -> None:
        """Paste this step's x̂₀ (at a chain's last step, or when a preview is due) and hand
        the canvas to the sink when it is due."""
        x0 = info.x0_pred
        if x0.ndim != 4 or tuple(x0.shape[-2:]) != self.tile:
            return
        if info.index == 0:
            self.cursor = (self.cursor + 1) % len(self.grid)
        due = self.sink.due()
        if not due and info.index != info.total - 1:
            return
        top, left = self.grid[max(self.cursor, 0)]
        r0, r1 = _span(top, self.tile[0], self.height, self.size[0])
        c0, c1 = _span(left, self.tile[1], self.width, self.size[1])
        self.canvas[:, r0:r1, c0:c1] = self._reduce(x0, (r1 - r0, c1 - c0))
        if due:
            unit = ((self.canvas.clamp(-1.0, 1.0) + 1.0) / 2.0).permute(1, 2, 0)
            self.sink(unit.cpu().numpy().astype(np.float32))


__all__ = ["PREVIEW_MAX_SIDE", "PreviewCanvas", "PreviewSink", "preview_size"]
