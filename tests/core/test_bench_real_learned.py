"""The learned columns of ``sagd bench real``: ``auto`` says what it chose and why per image,
DDNM runs the default model (gray scenes as three equal channels), and a retrained band model is
only run where its channels fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sagd_core.bench.real_learned import auto_choices, learned_checks, learned_rows
from sagd_core.bench.scenes import HIGH, LOW, Scene
from sagd_core.cli.common import CliError
from sagd_core.cli.main import build_parser
from sagd_core.data.dead_leaves import dead_leaves
from sagd_core.models.default import DEFAULT_MODEL_DIR
from sagd_core.restore.engine import restore
from sagd_core.restore.models import ModelSet, load_model
from sagd_core.restore.request import RestoreRequest


def _scene(channels: int) -> Scene:
    image = LOW + (HIGH - LOW) * dead_leaves(32, channels, seed=5)
    return Scene(f"leaves-{channels}", image)


@pytest.fixture(scope="module")
def default() -> ModelSet:
    return ModelSet(full=load_model(DEFAULT_MODEL_DIR))


def test_auto_alone_reports_its_choice() -> None:
    """On band noise without models: the shipped reader's unguarded read, then ``auto`` (which
    reads with it under its guard) with its choice and why."""
    rows = learned_rows(_scene(1), "band_noise", 0.0, seed=3, default=None, retrained={})
    assert [r["column"] for r in rows] == ["read:default", "auto"]
    row = rows[1]
    assert "band reader" in row["why"]
    assert row["psnr"] > 20.0 and 0.0 < row["ssim"] <= 1.0 and row["seconds"] > 0.0
    (line,) = auto_choices(rows + rows)
    assert line.startswith(f"auto chose {row['chosen']} on 2 image(s)")


@pytest.mark.parametrize("channels", [1, 3])
def test_ddnm_runs_the_default_model_on_gray_and_rgb(default: ModelSet, channels: int) -> None:
    rows = learned_rows(
        _scene(channels), "stripes", 0.0, seed=1, default=default, retrained={}, steps=2
    )
    assert [r["column"] for r in rows] == ["auto", "ddnm:default"]
    assert all(r["channels"] == channels and r["kind"] == "stripes" for r in rows)
    # the default model is given to auto, which does not use it (no learned fill shown to help)
    assert rows[0]["chosen"] == "classical"


def test_a_retrained_model_runs_only_on_scenes_with_its_channels(default: ModelSet) -> None:
    """The default model stands in for a band model here only to check the routing: a model in
    the band slot with 3 channels is skipped on a gray scene (no gray-via-RGB for sagd here)."""
    fake = ModelSet(band=default.full)
    rows = learned_rows(
        _scene(1), "band_noise", 0.0, seed=1, default=None, retrained={"band_noise": [fake]}
    )
    assert [r["column"] for r in rows] == ["read:default", "auto"]


def test_learned_checks_flag_auto_below_classical_and_give_the_gaps() -> None:
    def row(scene: str, column: str, psnr: float) -> dict[str, object]:
        return {"scene": scene, "kind": "band_noise", "sigma": 0.0, "column": column, "psnr": psnr}

    rows = [
        row("a", "classical", 30.0),
        row("b", "classical", 32.0),
        {**row("a", "auto", 30.0), "chosen": "classical", "why": "w"},
        {**row("b", "auto", 31.5), "chosen": "ddnm", "why": "v"},
        row("a", "ddnm:default", 27.0),
        row("b", "ddnm:default", 31.0),
    ]
    lines = learned_checks(rows)
    assert "auto chose classical on 1 image(s): w" in lines
    auto = next(line for line in lines if "auto − classical" in line)
    assert "-0.25 dB" in auto and "BELOW classical on b" in auto
    ddnm = next(line for line in lines if "ddnm:default − classical" in line)
    assert "-2.00 dB" in ddnm and "worst -3.00, a" in ddnm


def test_bench_real_refuses_a_bad_retrained_argument(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "bench",
            "real",
            "--quick",
            "--sizes",
            "32",
            "--retrained",
            "stripes",
            "--out",
            str(tmp_path),
        ]
    )
    with pytest.raises(CliError, match="KIND=DIR"):
        args.func(args)


def test_the_real_bench_tables_give_psnr_and_ssim() -> None:
    from sagd_core.bench.real import markdown, summarize

    def row(column: str, psnr: float, ssim: float) -> dict[str, object]:
        return {
            "scene": "a",
            "kind": "stripes",
            "sigma": 0.0,
            "column": column,
            "psnr": psnr,
            "ssim": ssim,
            "seconds": 0.5,
        }

    summary = summarize(
        [row("identity", 20.0, 0.5), row("notch", 25.0, 0.75), row("classical", 31.0, 0.875)]
    )
    assert "| stripes σ=0 | 20.00 | 25.00 | 31.00 | +6.00 | 0.500 |" in markdown(summary)
    ssim = markdown(summary, "ssim")
    assert "| stripes σ=0 | 0.5000 | 0.7500 | 0.8750 | +0.1250 | 0.500 |" in ssim


def test_the_unguarded_read_is_what_sagd_returns_when_its_guard_keeps_the_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sagd_core.bench.real_learned import unguarded_read
    from sagd_core.restore.methods import learned_guard
    from tests.core.test_one_call_restore import BAND, _clean_and_corrupted, _shaped

    monkeypatch.setattr(learned_guard, "MARGIN", 0.0)  # the exact read's gain is small here

    _clean, corrupted = _clean_and_corrupted()
    y = (corrupted[0, 0] + 1.0) / 2.0
    model = _shaped()
    read = unguarded_read(model, y, BAND)
    assert read is not None and read.shape == y.shape
    res = restore(y, RestoreRequest(band=BAND, method="sagd"), ModelSet(band=model))
    assert res.report["details"]["guard"]["regions"][0]["chosen"] == "learned"
    np.testing.assert_allclose(read, res.unclipped, atol=1e-5)
    assert unguarded_read(_shaped(corrupted=False), y, BAND) is None  # not corruption-shaped


def test_the_bench_measures_the_read_against_the_out_of_band_fill_of_the_same_model() -> None:
    """With the exact corrupted-data band model of stationary Gaussian images (trained on the
    bench's own band noise: std 0.06 of [0, 1], 0.12 of the model range), the one-call read (the
    whole observation) beats the fill from the trusted bands alone (SAGD.md §4.3: the band of
    the observation carries information the fill discards); both columns are that model's
    unguarded paths."""
    from typing import cast

    from sagd_core.bench.real import corrupt
    from sagd_core.bench.real_learned import FILL_SAMPLES
    from sagd_core.models import UNet
    from sagd_core.restore.gaussian_oracle import power_law_spectrum
    from sagd_core.restore.methods.sagd import as_raw_fill
    from sagd_core.spectral.weights import noise_weights
    from sagd_core.training.checkpoints import TrainedModel
    from tests.core.test_one_call_restore import (
        SPECTRUM,
        CorruptedStationaryEps,
        _clean_and_corrupted,
        _shaped,
    )

    class BenchNoiseEps(CorruptedStationaryEps):
        def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
            if (h, w) not in self._grids:
                w2 = noise_weights(self.noise, h, w) ** 2
                self._grids[(h, w)] = (w2, power_law_spectrum(h, w, **SPECTRUM) + 0.12**2 * w2)
            return self._grids[(h, w)]

    shaped = _shaped()
    exact = cast(UNet, BenchNoiseEps(shaped.schedule, shaped.config.noise, SPECTRUM))
    band = TrainedModel(
        net=exact, config=shaped.config, schedule=shaped.schedule, meta={}, device=shaped.device
    )
    clean, _ = _clean_and_corrupted(size=96)
    scene = Scene("gauss-96", (clean[0, 0] + 1.0) / 2.0)

    def columns(fill: bool) -> dict[str, dict[str, Any]]:
        found = learned_rows(
            scene,
            "band_noise",
            0.0,
            seed=2,
            default=None,
            retrained={"band_noise": [ModelSet(band=band)]},
            fill=fill,
        )
        return {r["column"]: r for r in found}

    rows = columns(fill=True)
    assert {"read:retrained", "fill:retrained", "sagd:retrained", "auto"} <= set(rows)
    without = columns(fill=False)
    assert "fill:retrained" not in without  # slow: only when asked
    assert rows["read:retrained"]["psnr"] > rows["fill:retrained"]["psnr"] + 0.5
    # the fill row is the raw fill with FILL_SAMPLES chains, as restore() gives it
    y, spec = corrupt(scene, "band_noise", 0.0, 2)
    request = RestoreRequest(band=spec, method="sagd", seed=2, samples=FILL_SAMPLES)
    again = restore(y, request, ModelSet(band=as_raw_fill(band)))
    expected = 10 * np.log10(1.0 / np.mean((again.unclipped - scene.image) ** 2))
    assert rows["fill:retrained"]["psnr"] == pytest.approx(expected, abs=1e-9)
