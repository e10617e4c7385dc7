"""A multiplicative screen on a photo with periodic content of its own (brick courses): the
copies of the photo's spectrum that every screen peak carries are no interference
(``sagd_core.analysis.modulation``), the photo's own harmonic series is no stripe line
(``peak_checks.harmonic_base``), and the screen's peaks, which fill much of a tile's ring, raise
no annulus (``stationarity.tile_bins``); a screen on a dark photo is found at 512²."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sagd_core.analysis.analyze import analyze_image
from sagd_core.analysis.modulation import without_image_copies
from sagd_core.analysis.peak_checks import harmonic_base
from sagd_core.analysis.regions import DetectedRegion
from sagd_core.analysis.stationarity import ring_medians, tile_bins
from sagd_core.bench import detection_real as dr
from sagd_core.bench.detection import covers, items_found
from sagd_core.bench.scenes import Scene, photo_crop


def _draw(seed: int, name: str, kind: str) -> tuple[np.ndarray, dict]:
    scenes = dr.scenes("train", (256, 512))
    i = next(k for k, s in enumerate(scenes) if s.name == name)
    k = dr.KINDS.index(kind)
    y, truth = dr.corrupt(scenes[i], kind, np.random.default_rng([seed, i, k, 0]))
    assert truth is not None
    return y, truth


def test_a_harmonic_series_is_recognised_from_imprecise_centroids() -> None:
    """Brick courses every 36 px: peaks near DC are off by a fraction of a bin, which the old
    test (multiples of the nearest peak) multiplied along the series; the fitted fundamental
    is not fooled."""
    bw = 1 / 256
    peaks = [(-0.001, 0.031), (-0.001, 0.056), (-0.001, 0.083), (-0.002, 0.109)]
    base = harmonic_base(peaks, 2 * bw)
    assert base is not None and math.hypot(*base) == pytest.approx(0.0276, abs=0.001)
    assert harmonic_base([(0.0, 0.1), (0.0, 0.17), (0.0, 0.31)], 2 * bw) is None


def _notch(fy: float, fx: float, score: float) -> DetectedRegion:
    return DetectedRegion({"kind": "notch", "fy": fy, "fx": fx, "radius": 0.004}, score, "peak")


def test_copies_of_the_image_around_a_screen_peak_are_dropped() -> None:
    """A photo with a periodic texture of its own at ``d`` under a screen at ``q``: the peak
    at ``q + d`` is the texture, moved; additive interference at the same place is not."""
    n = 256
    yy, xx = np.mgrid[:n, :n].astype(np.float64)
    rng = np.random.default_rng(1)
    base = 0.5 + 0.02 * rng.standard_normal((n, n))
    d, q = (0.0, 0.0625), (0.25, 0.125)
    texture = 0.5 + 0.1 * np.cos(2 * np.pi * (d[0] * yy + d[1] * xx)) + base - 0.5
    screen = 1.0 + 0.2 * np.cos(2 * np.pi * (q[0] * yy + q[1] * xx))
    copy = (q[0] + d[0], q[1] + d[1])
    peaks = [_notch(*q, 30.0), _notch(*copy, 15.0)]
    modulated = np.clip(texture * screen, 0, 1)[None] * 2 - 1
    assert [p.region["fx"] for p in without_image_copies(peaks, modulated)] == [q[1]]
    additive = (
        np.clip(
            base
            + 0.1 * np.cos(2 * np.pi * (q[0] * yy + q[1] * xx))
            + 0.03 * np.cos(2 * np.pi * (copy[0] * yy + copy[1] * xx)),
            0,
            1,
        )[None]
        * 2
        - 1
    )
    assert len(without_image_copies(peaks, additive)) == 2


def test_tile_rings_leave_out_the_bins_of_strong_peaks() -> None:
    t = 64
    grid = np.ones((1, t, t))
    bins = np.zeros((256, 256), dtype=bool)
    bins[32, 0] = True  # a peak at (0.125, 0) cycles/pixel: tile ring 8
    left_out = tile_bins(256, 256, bins, t)
    assert left_out[8, 0] and left_out[-8, 0] and not left_out[0, 8]
    grid[0, 6:11, 0:3] = 1e6  # the peak and its neighbours, much of nothing else
    grid[0, -10:-5, 0:3] = 1e6
    assert ring_medians(grid, left_out)[0, 8] == 1.0


def test_halftone_on_brick_is_found_without_the_bricks() -> None:
    """Train draw (seed 7): the detector before found 1 of the 6 screen peaks, behind seven
    false regions (the bricks' harmonics as a wedge whose alias covered a true peak, the
    copies of the bricks around the screen peaks, an annulus the peaks raised in the tiles)."""
    y, truth = _draw(7, "brick-gray-256", "halftone")
    regions = [r.region for r in analyze_image(y).regions]
    assert items_found(truth, regions, 1 / 256) == 6
    assert sum(not covers(r, truth, 1 / 256) for r in regions) <= 1
    assert all(r["kind"] == "notch" for r in regions)


def test_a_screen_on_a_dark_photo_is_found_at_512() -> None:
    """A train photo darkened (cubed: most of it near black) under the benchmark's halftone:
    the screen is weak in the dark parts, its peaks are still found."""
    crop = photo_crop("camera", 512, 1)
    unit = (crop - crop.min()) / np.ptp(crop)
    scene = Scene("camera-dark-512", dr._to_range(unit**3))
    y, truth = dr.corrupt(scene, "halftone", np.random.default_rng(5))
    assert truth is not None
    regions = [r.region for r in analyze_image(y).regions]
    assert items_found(truth, regions, 1 / 512) >= 5
    assert all(covers(r, truth, 1 / 512) for r in regions)
