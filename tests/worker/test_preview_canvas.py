"""The library side of a restoration's previews: ``Progress`` shows each sampler step to a
watcher carried by the progress callback, and ``PreviewCanvas`` turns steps (whole images or
tiles) into low-resolution previews of the whole image, only when the sink says one is due. Then
a real learned restoration (DDNM with the Gaussian oracle model) with a preview sink, tiled and
not: the previews have the image's shape, and asking for them changes nothing in the result."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from sagd_core.restore import ModelSet, RestoreRequest, restore
from sagd_core.restore.gaussian_oracle import oracle_model, sample_gaussian_images
from sagd_core.restore.previews import PREVIEW_MAX_SIDE, PreviewCanvas, preview_size
from sagd_core.restore.progress import Progress, StepWatchingProgress
from sagd_core.samplers.common import StepInfo
from sagd_core.spectral import NoiseSpec, parse_band_spec

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})


@dataclass
class Sink:
    """Collects previews; ``due_at``: the ``due()`` answers in turn (then always the last)."""

    due_at: list[bool] = field(default_factory=lambda: [True])
    asked: int = 0
    images: list[np.ndarray] = field(default_factory=list)

    def due(self) -> bool:
        answer = self.due_at[min(self.asked, len(self.due_at) - 1)]
        self.asked += 1
        return answer

    def __call__(self, image: np.ndarray) -> None:
        self.images.append(image)


def step(x0: torch.Tensor, index: int = 0, total: int = 4) -> StepInfo:
    return StepInfo(index=index, total=total, t=0.5, x=x0, x0_pred=x0)


# ---- Progress forwards steps -----------------------------------------------------------------
def test_progress_counts_then_shows_each_step_to_the_watcher() -> None:
    seen: list[tuple[int, int]] = []
    watched: list[int] = []

    class Watcher:
        def on_step(self, info: StepInfo) -> None:
            watched.append(info.index)

    progress = Progress(3, StepWatchingProgress(lambda d, t: seen.append((d, t)), Watcher()))
    x = torch.zeros(1, 1, 4, 4)
    for index in range(3):
        progress.on_step(step(x, index, 3))
    assert seen == [(1, 3), (2, 3), (3, 3)] and watched == [0, 1, 2]
    progress.advance()  # plain work units are counted, never watched
    assert watched == [0, 1, 2]
    StepWatchingProgress(None, Watcher())(1, 2)  # without a callback: counting only


def test_a_cancel_from_the_callback_stops_before_the_watcher() -> None:
    watched: list[int] = []

    class Watcher:
        def on_step(self, info: StepInfo) -> None:
            watched.append(info.index)

    def cancel(done: int, total: int) -> None:
        raise KeyboardInterrupt("cancelled")

    progress = Progress(2, StepWatchingProgress(cancel, Watcher()))
    with pytest.raises(KeyboardInterrupt):
        progress.on_step(step(torch.zeros(1, 1, 4, 4)))
    assert watched == []


# ---- the canvas ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("h", "w", "expected"),
    [(4000, 3000, (128, 96)), (30, 600, (6, 128)), (20, 10, (20, 10)), (1, 5000, (1, 128))],
)
def test_preview_size_keeps_the_aspect_and_caps_the_longest_side(
    h: int, w: int, expected: tuple[int, int]
) -> None:
    assert preview_size(h, w) == expected
    assert max(expected) <= PREVIEW_MAX_SIDE


def test_a_whole_image_step_becomes_a_unit_range_preview_when_due() -> None:
    y = torch.full((1, 3, 300, 200), -1.0, dtype=torch.float64)
    sink = Sink(due_at=[False, True])
    canvas = PreviewCanvas(sink, y, tile=512, overlap=32)
    x0 = torch.full((2, 3, 300, 200), 0.5)
    x0[1] = 0.9  # two samples: the preview is their mean (0.7)
    canvas.on_step(step(x0, 0))
    assert sink.images == []  # not due: nothing converted or handed over
    canvas.on_step(step(x0, 1))
    (image,) = sink.images
    assert image.shape == (128, 85, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, 0.85, atol=1e-6)  # (0.7 + 1) / 2


def test_out_of_range_values_are_clipped_and_other_shapes_ignored() -> None:
    sink = Sink()
    canvas = PreviewCanvas(sink, torch.zeros(1, 1, 16, 16), tile=256, overlap=32)
    canvas.on_step(step(torch.zeros(1, 1, 8, 8)))  # not the image's (or a tile's) shape
    assert sink.images == [] and sink.asked == 0
    canvas.on_step(step(torch.full((1, 1, 16, 16), 3.0)))
    assert sink.images[0].shape == (16, 16, 1) and float(sink.images[0].min()) == 1.0


def test_tiles_are_pasted_where_they_lie_over_the_input() -> None:
    h, w, tile = 32, 48, 16
    y = torch.full((1, 1, h, w), -1.0, dtype=torch.float64)  # the input: black
    sink = Sink()
    canvas = PreviewCanvas(sink, y, tile=tile, overlap=0)
    assert len(canvas.grid) == 6
    # The first tile's chain (top left) runs: its estimate shows there, the input elsewhere.
    canvas.on_step(step(torch.ones(1, 1, tile, tile), 0))
    first = sink.images[-1][..., 0]
    assert first.shape == (h, w)
    assert (first[:16, :16] == 1.0).all() and (first[16:, :] == 0.0).all()
    assert (first[:, 16:] == 0.0).all()
    # The chains of the next tiles: a grey estimate for each, in grid order.
    for _ in range(5):
        canvas.on_step(step(torch.zeros(1, 1, tile, tile), 0))
    last = sink.images[-1][..., 0]
    assert (last[:16, :16] == 1.0).all() and (last[:16, 16:] == 0.5).all()
    assert (last[16:, :] == 0.5).all()
    # A second pass (SAGD's fill after its denoise) starts over at the first tile.
    canvas.on_step(step(torch.full((1, 1, tile, tile), -1.0), 0))
    assert (sink.images[-1][:16, :16, 0] == 0.0).all()


def test_a_tile_finished_between_previews_still_reaches_the_canvas() -> None:
    sink = Sink(due_at=[True, False, False, True])
    canvas = PreviewCanvas(sink, torch.zeros(1, 1, 32, 32, dtype=torch.float64), tile=16, overlap=0)
    canvas.on_step(step(torch.zeros(1, 1, 16, 16), 0, 2))  # tile 1 starts (due)
    canvas.on_step(step(torch.ones(1, 1, 16, 16), 1, 2))  # tile 1's last step: pasted, not due
    canvas.on_step(step(torch.zeros(1, 1, 16, 16), 0, 2))  # tile 2 starts: not due
    canvas.on_step(step(torch.zeros(1, 1, 16, 16), 1, 2))  # due
    assert len(sink.images) == 2
    assert (sink.images[-1][:16, :16, 0] == 1.0).all()


# ---- a real learned restoration --------------------------------------------------------------
def _restore(image: np.ndarray, sink: Sink | None, tile: int) -> np.ndarray:
    model = oracle_model("full", NoiseSpec(), spectrum={"scale": 0.002})
    request = RestoreRequest(band=BAND, method="ddnm", steps=6)
    result = restore(
        image, request, ModelSet(full=model), preview=sink, tile_size=tile, tile_overlap=4
    )
    return np.asarray(result.image)


@pytest.mark.parametrize("tile", [256, 16])
def test_a_learned_restoration_sends_whole_image_previews(tile: int) -> None:
    clean = sample_gaussian_images(1, 1, 24, 40, seed=1, scale=0.002)[0, 0]
    image = np.clip((clean + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
    sink = Sink(due_at=[True, False])  # one preview at the first step, then none
    with_previews = _restore(image, sink, tile)
    assert len(sink.images) == 1 and sink.images[0].shape == (24, 40, 1)
    every = Sink()
    _restore(image, every, tile)
    steps = 6 * (1 if tile == 256 else 6)  # 6 steps per tile; 2 × 3 tiles of 16 px
    assert len(every.images) == steps
    assert all(p.shape == (24, 40, 1) and 0.0 <= p.min() <= p.max() <= 1.0 for p in every.images)
    # The last preview is the restoration's estimate, at full size here.
    assert float(np.abs(every.images[-1][..., 0] - with_previews).mean()) < 0.05
    # Previews only watch: the result is the one without them.
    np.testing.assert_array_equal(with_previews, _restore(image, None, tile))
