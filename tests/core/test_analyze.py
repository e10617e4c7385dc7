"""Band detection (``sagd analyze``): injected interference is found, clean images stay quiet."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sagd_core.analysis.analyze import analyze_chw, analyze_image, combine_analyses
from sagd_core.bench.detection import evaluate_detection
from sagd_core.data import apply_corruption, load_builtin, parse_corruption
from sagd_core.restore import RestoreError
from sagd_core.spectral import check_spec_for_shape


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return load_builtin("natural", image_size=96, split="test", count=6, seed=0)


def _corrupt(images: np.ndarray, corruption: dict[str, object]) -> np.ndarray:
    return apply_corruption(images, parse_corruption(corruption), seed=7)


def test_periodic_peaks_become_notches_at_the_right_frequencies(photos: np.ndarray) -> None:
    freqs = [(0.1, 0.2), (-0.23, 0.31)]
    x = _corrupt(photos, {"kind": "periodic", "frequencies": freqs, "amplitude": 0.15})
    for img in x:
        analysis = analyze_chw(img)
        notches = [r.region for r in analysis.regions if r.region["kind"] == "notch"]
        for fy, fx in freqs:
            dist = [
                min(math.hypot(n["fy"] - fy, n["fx"] - fx), math.hypot(n["fy"] + fy, n["fx"] + fx))
                for n in notches
            ]
            assert dist and min(dist) < 1.5 / 96
        spec = analysis.spec
        assert spec is not None
        check_spec_for_shape(spec, 96, 96)  # a usable spec, not ill-posed


def test_stripes_become_a_wedge_and_band_noise_an_annulus(photos: np.ndarray) -> None:
    stripes = _corrupt(
        photos[:3],
        {"kind": "oriented", "angle_deg": 30.0, "low": 0.1, "high": 0.4, "amplitude": 0.3},
    )
    for img in stripes:
        wedges = [r.region for r in analyze_chw(img).regions if r.region["kind"] == "wedge"]
        assert any(
            abs((w["angle_deg"] - 30.0 + 90) % 180 - 90) <= w["tolerance_deg"] for w in wedges
        )
    band = _corrupt(photos[:3], {"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": 1.0})
    for img in band:
        annuli = [r.region for r in analyze_chw(img).regions if r.region["kind"] == "annulus"]
        assert any(
            a["low"] <= 0.16 and a["high"] >= 0.29 and a["high"] - a["low"] < 0.25 for a in annuli
        )


def test_clean_photos_give_few_false_detections(photos: np.ndarray) -> None:
    found = sum(len(analyze_chw(img).regions) for img in photos)
    assert found <= 2


def test_precision_and_recall_on_random_corruptions(photos: np.ndarray) -> None:
    scores = evaluate_detection(photos[:4], seed=1)
    for kind in ("periodic", "oriented", "band_noise"):
        assert scores[kind].recall >= 0.75, kind
        assert scores[kind].precision >= 0.6, kind
    assert scores["clean"].detections <= 1


def test_analysis_report_is_json_ready_and_respects_max_regions(photos: np.ndarray) -> None:
    import json

    from sagd_core.analysis.analyze import AnalyzeConfig

    freqs = [(0.1, 0.2), (-0.23, 0.31), (0.3, 0.05)]
    img = _corrupt(photos[1:2], {"kind": "periodic", "frequencies": freqs, "amplitude": 0.15})[0]
    analysis = analyze_chw(img, AnalyzeConfig(max_regions=2))
    assert len(analysis.regions) == 2
    assert analysis.dropped
    data = json.loads(json.dumps(analysis.to_dict()))
    assert len(data["band_spec"]["regions"]) == 2
    assert data["power_law"]["slope"] < 0  # this photo's power falls with frequency


def test_combined_spec_keeps_regions_seen_in_most_images(photos: np.ndarray) -> None:
    x = _corrupt(photos, {"kind": "periodic", "frequencies": [(0.1, 0.2)], "amplitude": 0.15})
    spec = combine_analyses([analyze_chw(img) for img in x])
    assert spec is not None
    assert len(spec.regions) == 1 and spec.regions[0].kind == "notch"
    assert combine_analyses([analyze_chw(img) for img in photos]) is None


def test_analyze_image_takes_unit_range_images_and_validates() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((48, 64, 3)).astype(np.float32)
    _yy, xx = np.mgrid[:48, :64]
    img += 0.3 * np.cos(2 * np.pi * (0.25 * xx))[:, :, None]
    analysis = analyze_image(img)
    assert analysis.spec is not None
    assert any(
        r.region["kind"] == "notch" and abs(abs(r.region["fx"]) - 0.25) < 0.02
        for r in analysis.regions
    )
    with pytest.raises(RestoreError, match="constant"):
        analyze_image(np.zeros((32, 32), dtype=np.float32))
