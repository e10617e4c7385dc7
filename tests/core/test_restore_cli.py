"""``sagd restore`` and ``sagd analyze`` (called through their own parsers), and restoring with
a model directory written by the real training loop."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from sagd_core.cli import analyze_cmd, restore_cmd
from sagd_core.cli.common import EXIT_USAGE, CliError
from sagd_core.cli.main import main
from sagd_core.data import ImageReadError, read_image, write_image
from sagd_core.models import unet_preset
from sagd_core.models.default import DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAME
from sagd_core.restore import ModelSet, RestoreRequest, load_model, restore
from sagd_core.spectral import BandSpec, NoiseSpec, parse_band_spec
from sagd_core.training import TrainConfig, train

BAND: dict[str, object] = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}


def _parse(module: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())  # type: ignore[attr-defined]
    return parser.parse_args(argv)


def _restore(source: Path, out: Path, *options: str) -> argparse.Namespace:
    """``sagd restore SOURCE -o OUT OPTIONS --no-progress``."""
    return _parse(restore_cmd, ["restore", str(source), "-o", str(out), *options, "--no-progress"])


def _striped(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = 0.5 + 0.2 * np.sin(xx / 9.0) * np.cos(yy / 7.0) + 0.02 * rng.standard_normal((h, w))
    return np.clip(base + 0.15 * np.cos(2 * np.pi * 0.25 * xx), 0, 1).astype(np.float32)


def _train_band_model(
    directory: Path,
    *,
    images: int,
    seed: int,
    steps: int,
    batch_size: int,
    warmup_steps: int = 1,
    role: str = "band",
) -> BandSpec:
    """Train a cpu-tiny band model of BAND (or with ``role="omission"`` an omission model) on
    uniform noise images into ``directory``; the band."""
    band = parse_band_spec(BAND)
    noise = NoiseSpec(kind="band", band=band) if role == "band" else NoiseSpec(omit=band)
    config = TrainConfig(
        model=unet_preset("cpu-tiny", 1),
        noise=noise,
        band=band,
        role=role,
        project_trusted=role == "omission",
        steps=steps,
        batch_size=batch_size,
        warmup_steps=warmup_steps,
        device="cpu",
    )
    data = np.random.default_rng(seed).uniform(-1, 1, (images, 1, 16, 16)).astype(np.float32)
    train(config, directory, images=data)
    return band


def test_restore_cli_writes_image_and_report(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        write_image(src / f"img{i}.png", _striped(seed=i), bit_depth=16)
    band = tmp_path / "band.json"
    band.write_text(json.dumps(BAND))
    out = tmp_path / "out"
    args = _restore(src, out, "--band", f"@{band}", "--method", "notch", "--bit-depth", "16")
    assert args.func(args) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["img0.png", "img0.report.json", "img1.png", "img1.report.json"]
    report = json.loads((out / "img0.report.json").read_text())
    assert report["method"] == "notch" and report["out_of_band_residual"] < 1e-5
    assert read_image(out / "img0.png").shape == (48, 64, 1)


def test_restore_cli_writes_nothing_when_an_image_fails(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", _striped(), bit_depth=8)
    (src / "b.png").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    args = _restore(src, out, "--band", json.dumps(BAND), "--method", "notch")
    with pytest.raises(ImageReadError, match=r"b\.png"):
        args.func(args)
    assert list(out.iterdir()) == []  # no image, no report, no staging folder


def test_restore_cli_auto_band_and_bad_options(tmp_path: Path) -> None:
    write_image(tmp_path / "s.png", _striped(), bit_depth=16)
    out = tmp_path / "out"
    args = _restore(tmp_path / "s.png", out, "--auto", "--method", "notch")
    assert args.func(args) == 0
    report = json.loads((out / "s.report.json").read_text())
    kinds = [r["kind"] for r in report["band"]["regions"]]
    assert "notch" in kinds and report["analysis"]["regions"]
    bad = _restore(tmp_path / "s.png", out, "--band", json.dumps(BAND), "--samples", "99")
    with pytest.raises(CliError, match=r"samples|16"):
        bad.func(bad)
    with pytest.raises(CliError, match="does not exist"):
        missing = _restore(tmp_path / "nope.png", out, "--auto")
        missing.func(missing)


def test_analyze_cli_writes_a_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "s.png", _striped(), bit_depth=16)
    spec_path, report_path = tmp_path / "spec.json", tmp_path / "analysis.json"
    args = _parse(
        analyze_cmd,
        [
            "analyze",
            str(tmp_path / "s.png"),
            "-o",
            str(spec_path),
            "--report",
            str(report_path),
            "--no-progress",
        ],
    )
    assert args.func(args) == 0
    spec = parse_band_spec(spec_path.read_text())
    assert any(r.kind == "notch" for r in spec.regions)
    assert json.loads(report_path.read_text())["images"][0]["power_law"]
    assert "wrote a band spec" in capsys.readouterr().out


def test_restore_with_a_trained_model_directory(tmp_path: Path) -> None:
    band = _train_band_model(tmp_path / "band_model", images=8, seed=0, steps=3, batch_size=4)
    model = load_model(tmp_path / "band_model")
    models = ModelSet.from_models([model])
    assert models.band is model
    res = restore(_striped(32, 32), RestoreRequest(band=band, method="sagd", steps=4), models)
    assert res.report["bands"][0]["action"] == "filled"
    assert res.report["out_of_band_residual"] < 1e-5
    out = tmp_path / "out"
    write_image(tmp_path / "x.png", _striped(32, 32))
    model_options = ["--method", "sagd", "--model", str(tmp_path / "band_model"), "--steps", "3"]
    model_options += ["--samples", "2"]
    args = _restore(tmp_path / "x.png", out, "--band", json.dumps(BAND), *model_options)
    assert args.func(args) == 0
    assert (out / "x.uncertainty.png").exists()


def test_fill_calibration_sidecar_is_validated(tmp_path: Path) -> None:
    from sagd_core.checkpoint import CheckpointError
    from sagd_core.restore.models import CALIBRATION_FILE

    band = _train_band_model(
        tmp_path / "m", images=4, seed=1, steps=1, batch_size=2, warmup_steps=0
    )
    sidecar = tmp_path / "m" / CALIBRATION_FILE
    for bad in ('{"gain": 3}', '{"gain": "x"}', "[1]", "not json"):
        sidecar.write_text(bad)
        with pytest.raises(CheckpointError, match=r"calibration|outside"):
            load_model(tmp_path / "m")
    sidecar.write_text('{"gain": 0.25, "samples": 4, "size": [32, 32]}')
    model = load_model(tmp_path / "m")
    res = restore(
        _striped(32, 32), RestoreRequest(band=band, method="sagd", steps=3), ModelSet(band=model)
    )
    assert res.report["details"]["fill"]["gain"] == 0.25


def test_restore_cli_auto_writes_an_image_without_detection_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "s.png", _striped(), bit_depth=16)
    from sagd_core.data.dead_leaves import dead_leaves

    smooth = dead_leaves(64, 1, seed=0)[:48].astype(np.float32)  # a clean scene: nothing found
    write_image(src / "t.png", smooth, bit_depth=16)
    out = tmp_path / "out"
    args = _restore(src, out, "--auto", "--method", "notch")
    assert args.func(args) == 0
    report = json.loads((out / "t.report.json").read_text())
    assert report["method"] == "none" and "no band" in report["warnings"][0]
    np.testing.assert_allclose(read_image(out / "t.png"), read_image(src / "t.png"), atol=0.6 / 255)
    assert json.loads((out / "s.report.json").read_text())["method"] == "notch"
    assert "t.png" in capsys.readouterr().err


def test_restore_cli_sagd_without_a_model_is_an_error_naming_the_default_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --model, sagd could only delete the band (a notch in disguise): refused before
    any work, with how to get a band model and which method uses the shipped default model."""
    write_image(tmp_path / "x.png", _striped(32, 32))
    out = tmp_path / "out"
    args = _restore(tmp_path / "x.png", out, "--band", json.dumps(BAND), "--method", "sagd")
    with pytest.raises(CliError, match=r"--method sagd needs a trained band model directory"):
        args.func(args)
    assert not out.exists()
    argv = ["restore", str(tmp_path / "x.png"), "-o", str(out), "--band", json.dumps(BAND)]
    assert main([*argv, "--method", "sagd", "--no-progress"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--model DIR" in err and "sagd train --recipe band" in err
    assert str(DEFAULT_MODEL_DIR) in err and "--method ddnm uses it" in err
    assert main([*argv, "--method", "auto", "--no-progress"]) == 0  # model-free: no model needed


def test_restore_cli_ddnm_without_a_model_uses_the_default_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--method ddnm with no --model fills the band with the shipped default model (an RGB prior,
    used per channel on this gray image) and says so on stderr and in the report."""
    write_image(tmp_path / "x.png", _striped(32, 32))
    out = tmp_path / "out"
    argv = ["restore", str(tmp_path / "x.png"), "-o", str(out), "--band", json.dumps(BAND)]
    assert main([*argv, "--method", "ddnm", "--steps", "3", "--no-progress"]) == 0
    assert f"using the shipped {DEFAULT_MODEL_NAME!r} model" in capsys.readouterr().err
    report = json.loads((out / "x.report.json").read_text())
    assert report["method"] == "ddnm"
    assert read_image(out / "x.png").shape[:2] == (32, 32)


def test_restore_with_only_an_omission_model_says_the_band_was_not_filled(tmp_path: Path) -> None:
    """An omission model cannot fill the band: the report says the band was set to zero (in its
    warnings, not only in the band's action) and that ``samples > 1`` gave one result."""
    _train_band_model(
        tmp_path / "omission", images=4, seed=2, steps=1, batch_size=2, role="omission"
    )
    write_image(tmp_path / "x.png", _striped(32, 32))
    options = ["--band", json.dumps(BAND), "--method", "sagd", "--steps", "3", "--samples", "3"]
    options += ["--model", str(tmp_path / "omission")]
    for extra in ([], ["--noise-std", "0.05"]):  # returned exactly, or denoised (Tweedie)
        out = tmp_path / f"out{len(extra)}"
        args = _restore(tmp_path / "x.png", out, *options, *extra)
        assert args.func(args) == 0
        report = json.loads((out / "x.report.json").read_text())
        assert report["bands"][0]["action"] == "omitted"
        assert any(w.startswith("the band was not filled") for w in report["warnings"])
        assert any("samples=3 ignored" in w for w in report["warnings"]), report["warnings"]
        assert report["samples"] == 1 and not (out / "x.uncertainty.png").exists()
