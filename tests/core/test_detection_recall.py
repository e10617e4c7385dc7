"""Band detection at real sizes: rings, stripes and halftone peaks are found where they are, a
clean scene yields nothing, and the real-size benchmark scores a tiny set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sagd_core.analysis.analyze import analyze_image
from sagd_core.bench import detection_real as dr


@pytest.fixture(scope="module")
def photo() -> dr.Scene:
    return dr.scenes("train", (256,), photos=1, leaves=0)[0]  # astronaut, gray, 256²


def test_halftone_peaks_found(photo: dr.Scene) -> None:
    y, truth = dr.corrupt(photo, "halftone", np.random.default_rng(2))
    assert truth is not None
    notches = [r.region for r in analyze_image(y).regions if r.region["kind"] == "notch"]
    found = 0
    for fy, fx in truth["frequencies"]:
        found += any(
            min(math.hypot(n["fy"] - fy, n["fx"] - fx), math.hypot(n["fy"] + fy, n["fx"] + fx))
            <= n["radius"] + 1 / 256
            for n in notches
        )
    assert found >= 4  # of the six peaks (bases, harmonics, cross terms)


def test_clean_photo_yields_nothing(photo: dr.Scene) -> None:
    assert analyze_image(photo.image).regions == []


def test_benchmark_scores_a_tiny_set() -> None:
    scenes = dr.scenes("train", (256,), photos=0, leaves=1)[:1]
    rows = dr.evaluate(scenes, kinds=("clean", "periodic"), draws=1, seed=3)
    scores = dr.summarize(rows, ("kind",))
    assert scores[("periodic",)].items >= 1
    assert 0.0 <= scores[("periodic",)].recall <= 1.0
    assert "periodic" in dr.markdown(rows)
