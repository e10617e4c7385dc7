"""``sagd calibrate``: a band model's fill calibrated on held-out corrupted images from the CLI
writes ``fill_calibration.json`` that ``load_model`` carries, with the images the bench would use;
bad models, images and options are refused with one line and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sagd_core.calibration.fill import calibrate_fill_gain
from sagd_core.checkpoint import CheckpointError
from sagd_core.cli.main import main
from sagd_core.data import apply_corruption, load_builtin, parse_corruption, write_image
from sagd_core.restore.models import CALIBRATION_FILE, load_model
from sagd_core.training.recipes import NAMED_CORRUPTIONS
from tests.core.recipe_cli import tiny_recipe_argv

FAST = ["--count", "4", "--steps", "2", "--samples", "1", "--threads", "1"]


def _train(out: Path, role: str, steps: int) -> Path:
    assert main(tiny_recipe_argv(role, "periodic", out, steps=steps)) == 0
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("calibrate-models")
    return {
        "band": _train(root / "band", "band", 3),
        "omission": _train(root / "omission", "omission", 1),
    }


def _fresh_band(models: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(models["band"], tmp_path / "band"))


def test_calibrate_builtin_split_writes_the_sidecar(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    band = _fresh_band(models, tmp_path)
    assert (
        main(
            [
                "calibrate",
                str(band),
                "--data",
                "digits",
                "--split",
                "test",
                "--corruption",
                "periodic",
                *FAST,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "gain" in out and "corruption-to-noise ratio" in out and CALIBRATION_FILE in out
    calib = json.loads((band / CALIBRATION_FILE).read_text())
    assert 0.0 <= calib["gain"] <= 1.0 and calib["images"] == 4
    assert (calib["steps"], calib["samples"]) == (2, 1)
    model = load_model(band)
    assert model.meta["fill_calibration"]["gain"] == calib["gain"]
    spec = model.config.band
    assert spec is not None and calib["band"] == spec.model_dump(mode="json")
    # The same held-out images and conversion as ``sagd bench restore`` give the same numbers.
    clean = load_builtin("digits", image_size=16, split="test")[:4]
    images = apply_corruption(clean, parse_corruption(NAMED_CORRUPTIONS["periodic"]), seed=777)
    direct = calibrate_fill_gain(
        load_model(models["band"]), images.astype(np.float64), spec, steps=2, samples=1
    )
    assert direct["raw_gain"] == pytest.approx(calib["raw_gain"])
    assert direct["measured_corruption_ratio"] == pytest.approx(calib["measured_corruption_ratio"])
    assert not (models["band"] / CALIBRATION_FILE).exists()  # directory=None wrote nothing
    assert "read at ᾱ" in out and calib["read_alpha_bar"] in (0.1, 0.3, 0.5, 0.75)
    for bad in (1.0, 0.0, "x"):  # a tampered read level is refused when the model is loaded
        (band / CALIBRATION_FILE).write_text(json.dumps({**calib, "read_alpha_bar": bad}))
        with pytest.raises(CheckpointError, match="read_alpha_bar"):
            load_model(band)


def test_calibrate_image_folder(models: dict[str, Path], tmp_path: Path) -> None:
    band = _fresh_band(models, tmp_path)
    folder = tmp_path / "held-out"
    folder.mkdir()
    clean = load_builtin("digits", image_size=16, split="test")[:3]
    corrupted = apply_corruption(clean, parse_corruption(NAMED_CORRUPTIONS["periodic"]), seed=5)
    for k, img in enumerate(corrupted):
        write_image(folder / f"{k}.png", np.clip((img[0] + 1) / 2, 0, 1), bit_depth=16)
    assert main(["calibrate", str(band), "--images", str(folder), *FAST]) == 0
    calib = json.loads((band / CALIBRATION_FILE).read_text())
    assert calib["images"] == 3 and 0.0 <= calib["gain"] <= 1.0
    assert calib["size"] == [16, 16]  # restorations of another size re-check the fill
    assert "corruption_var" not in calib  # a periodic-corruption model is not corruption-shaped


def test_calibrate_a_corruption_shaped_folder_model_records_the_one_call_read(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--corruption-shaped`` declares a folder-trained band model's corruption as noise of its
    band's shape: the calibration records the level in that band and the one-call read's κ
    (chosen by SURE on the same images), and the command says so."""
    band = _fresh_band(models, tmp_path)
    folder = tmp_path / "held-out"
    folder.mkdir()
    spec = load_model(band).config.band
    assert spec is not None
    noise = {"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": 0.3}
    clean = load_builtin("digits", image_size=16, split="test")[:4]
    corrupted = apply_corruption(clean, parse_corruption(noise), seed=5)
    for k, img in enumerate(corrupted):
        write_image(folder / f"{k}.png", np.clip((img[0] + 1) / 2, 0, 1), bit_depth=16)
    argv = ["calibrate", str(band), "--images", str(folder), "--corruption-shaped", *FAST]
    assert main(argv) == 0
    calib = json.loads((band / CALIBRATION_FILE).read_text())
    assert calib["corruption_shaped"] is True and calib["corruption_var"] >= 0.0
    assert calib["read_excess"] is None or calib["read_excess"] in (0.03, 0.1, 0.3, 1.0)
    out = capsys.readouterr().out
    assert "measured at 16×16" in out and "corruption-shaped band model" in out


def test_calibrate_refusals_write_nothing(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    band = str(models["band"])
    one = tmp_path / "one"
    one.mkdir()
    write_image(one / "a.png", np.full((16, 16), 0.5))
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    for k in range(2):
        write_image(rgb / f"{k}.png", np.random.default_rng(k).random((16, 16, 3)))
    data = ["--data", "digits", "--corruption", "periodic"]
    cases = {
        "only a band model": [str(models["omission"]), *data],
        "not a model directory": [str(tmp_path), *data],
        "--count must be at least 2": [band, *data, "--count", "1"],
        "at least 2 images, found 1": [band, "--images", str(one)],
        "3-channel images but the model takes 1": [band, "--images", str(rgb)],
        "unknown dataset 'mnist'": [band, "--data", "mnist", "--corruption", "periodic"],
        "unknown corruption 'nope'": [band, "--data", "digits", "--corruption", "nope"],
        "--data needs --corruption": [band, "--data", "digits"],
        "--corruption goes with --data": [band, "--images", str(rgb), "--corruption", "periodic"],
        "--split train overlaps it": [band, *data, "--split", "train"],
        "--split all overlaps it": [band, *data, "--split", "all"],
    }
    for message, argv in cases.items():
        assert main(["calibrate", *FAST, *argv]) != 0, message
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (models["band"] / CALIBRATION_FILE).exists()
    assert not (models["omission"] / CALIBRATION_FILE).exists()
