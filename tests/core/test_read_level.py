"""The posterior-mean read level of the band fill is calibrated with the fill (ρ, gain) on
corrupted images only, stored with the model, and used by SAGD restoration (defaulting to the
cut ᾱ = 0.1 for uncalibrated models and older calibrations)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sagd_core.calibration.fill import best_candidate, calibrate_fill_gain
from sagd_core.restore import ModelSet, RestoreRequest, restore
from sagd_core.restore.gaussian_oracle import oracle_model, sample_gaussian_images
from sagd_core.restore.methods.sagd import as_raw_fill
from sagd_core.restore.models import CALIBRATION_FILE, LoadedModel
from sagd_core.restore.request import RestoreSchedule
from sagd_core.spectral import NoiseSpec, parse_band_spec
from tests.core.periodic_case import periodic_band_model, periodic_images

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})


def _band_model(calibration: dict[str, float] | None = None) -> LoadedModel:
    model = oracle_model(
        "band", NoiseSpec(kind="band", band=BAND), band=BAND, spectrum={"scale": 0.002}
    )
    if calibration is not None:
        model.meta["fill_calibration"] = calibration
    return as_raw_fill(model)  # the fill's read level itself, without the probe-band guard


def _restore(model: LoadedModel, **request: object) -> tuple[np.ndarray, dict[str, object]]:
    image = (sample_gaussian_images(1, 1, 16, 16, seed=3, scale=0.002)[0, 0] + 1.0) / 2.0
    res = restore(
        image.astype(np.float32),
        RestoreRequest(method="sagd", band=BAND, steps=10, samples=2, **request),  # type: ignore[arg-type]
        ModelSet(band=model),
    )
    return res.unclipped, res.report["details"]["fill"]


def test_best_candidate_is_the_largest_estimated_reduction_first_on_ties() -> None:
    cands = [
        {"read_alpha_bar": r, "corruption_ratio": rho, "reduction": red}
        for r, rho, red in [
            (0.1, 1.0, 0.2),
            (0.1, 0.0, 0.1),
            (0.5, 1.0, 0.7),
            (0.5, 0.0, 0.3),
            (0.75, 1.0, 0.5),
        ]
    ]
    assert best_candidate(cands) is cands[2]
    notched = [{**c, "reduction": 0.0} for c in cands]  # none significant
    assert best_candidate(notched) is notched[0]
    with pytest.raises(ValueError):
        best_candidate([])


def test_calibration_tries_every_read_level_and_ratio_and_stores_the_best(tmp_path: Path) -> None:
    spec, _, y = periodic_images(12, seed=5, corruption_seed=6)
    model = periodic_band_model(spec)
    calib = calibrate_fill_gain(
        model, y, spec, steps=6, samples=2, read_levels=(0.1, 0.5), directory=tmp_path
    )
    pairs = {(c["read_alpha_bar"], c["corruption_ratio"]) for c in calib["candidates"]}
    assert pairs == {
        (r, rho) for r in (0.1, 0.5) for rho in (calib["measured_corruption_ratio"], 0.0)
    }
    best = max(calib["candidates"], key=lambda c: c["reduction"])
    assert calib["read_alpha_bar"] == best["read_alpha_bar"]
    assert (calib["gain"], calib["corruption_ratio"]) == (best["gain"], best["corruption_ratio"])
    # The gain is kept only when significant (2 SE) for the chosen candidate.
    assert (calib["gain"] > 0) == (best["estimated_reduction"] > 2.0 * best["stderr"])
    assert model.meta["fill_calibration"]["read_alpha_bar"] == calib["read_alpha_bar"]
    stored = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    assert stored["read_alpha_bar"] == calib["read_alpha_bar"]


def test_restore_reads_the_fill_at_the_calibrated_level() -> None:
    plain, plain_fill = _restore(_band_model())
    # An older calibration file (no read level) keeps the default read: the same fill.
    old, old_fill = _restore(_band_model({"gain": 1.0, "corruption_ratio": 0.0}))
    np.testing.assert_array_equal(old, plain)
    default_read = float(plain_fill["read_alpha_bar"])  # type: ignore[arg-type]
    assert 0.1 <= default_read < 0.3 and old_fill["read_alpha_bar"] == default_read
    moved, fill = _restore(
        _band_model({"gain": 1.0, "corruption_ratio": 0.0, "read_alpha_bar": 0.6})
    )
    assert abs(float(fill["read_alpha_bar"]) - 0.6) < 0.01  # type: ignore[arg-type]
    assert "0.6" in str(fill["estimator"])
    assert fill["steps"] == plain_fill["steps"]  # as many network calls
    assert not np.allclose(moved, plain)


def test_a_read_level_in_the_request_schedule_wins_over_the_calibrated_one() -> None:
    model = _band_model({"gain": 1.0, "corruption_ratio": 0.0, "read_alpha_bar": 0.6})
    _, fill = _restore(model, schedule=RestoreSchedule(kind="linear", read_alpha_bar=0.3))
    assert abs(float(fill["read_alpha_bar"]) - 0.3) < 0.01  # type: ignore[arg-type]


def test_a_read_level_on_the_models_own_schedule_is_the_calibrated_read() -> None:
    """``RestoreSchedule(read_alpha_bar=r)`` (kind ``model``) reads the model's own plan at r,
    exactly as a calibration at r does."""
    calibrated, calibrated_fill = _restore(
        _band_model({"gain": 1.0, "corruption_ratio": 0.0, "read_alpha_bar": 0.6})
    )
    requested, fill = _restore(_band_model(), schedule=RestoreSchedule(read_alpha_bar=0.6))
    np.testing.assert_array_equal(requested, calibrated)
    assert fill["read_alpha_bar"] == calibrated_fill["read_alpha_bar"] == 0.6
    assert fill["steps"] == calibrated_fill["steps"]
