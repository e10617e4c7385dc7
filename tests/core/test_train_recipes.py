"""Training recipes for a corruption type (issue #3 deliverable 2): ``sagd train --recipe`` and the
``{dataset}-{corruption}-{role}`` presets give the right forward noise and data, and train."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sagd_core.cli.main import main
from sagd_core.data import parse_corruption
from sagd_core.restore.models import load_model
from sagd_core.spectral import NoiseSpec, noise_weights
from sagd_core.spectral.masks import band_mask
from sagd_core.training import TrainConfig, training_preset
from sagd_core.training.recipes import NAMED_CORRUPTIONS, corruption_recipes
from tests.core.recipe_cli import tiny_recipe_argv


def _config(capsys: pytest.CaptureFixture[str], *argv: str) -> TrainConfig:
    assert main(["train", *argv, "--print-config"]) == 0
    return TrainConfig.model_validate(json.loads(capsys.readouterr().out))


@pytest.mark.parametrize("corruption", sorted(NAMED_CORRUPTIONS))
def test_recipe_noise_matches_the_corruption_band(
    corruption: str, capsys: pytest.CaptureFixture[str]
) -> None:
    band = parse_corruption(NAMED_CORRUPTIONS[corruption]).band_spec()
    mask = band_mask(band, 32, 32)
    configs = {
        role: _config(capsys, "--recipe", role, "--corruption", corruption, "--data", "lfw")
        for role in ("omission", "band", "standard", "full")
    }
    for role, config in configs.items():
        assert config.role == role and config.band == band
        assert config.data.source == "lfw" and config.data.image_size == 32
        # omission/band/standard see the corrupted images only; full the clean ones.
        expected = None if role == "full" else parse_corruption(NAMED_CORRUPTIONS[corruption])
        got = None if config.data.corruption is None else parse_corruption(config.data.corruption)
        assert got == expected
    w = {role: noise_weights(c.noise, 32, 32) for role, c in configs.items()}
    assert np.all(w["omission"][mask == 1] == 0) and np.all(w["omission"][mask == 0] > 0)
    assert configs["omission"].project_trusted
    assert np.all(w["band"][mask == 0] == 0) and np.all(w["band"][mask == 1] > 0)
    assert configs["band"].noise.kind == "band" and not configs["band"].project_trusted
    for role in ("standard", "full"):
        assert configs[role].noise == NoiseSpec()  # white, whole spectrum
        assert np.allclose(w[role], 1.0)


def test_recipe_json_corruption_band_override_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    corruption = json.dumps({"kind": "band_noise", "low": 0.2, "high": 0.35, "gamma": 0.5})
    band = json.dumps({"regions": [{"kind": "annulus", "low": 0.18, "high": 0.4}]})
    config = _config(
        capsys,
        "--recipe",
        "omission",
        "--corruption",
        corruption,
        "--band",
        band,
        "--data",
        "natural",
        "--image-size",
        "24",
        "--steps",
        "40",
        "--unet",
        "cpu-tiny",
        "--seed",
        "3",
    )
    assert config.noise.omit is not None and config.noise.omit.regions[0].low == 0.18  # type: ignore[union-attr]
    assert config.data.corruption is not None and config.data.corruption["gamma"] == 0.5
    assert (config.steps, config.seed, config.data.image_size, config.data.corruption_seed) == (
        40,
        3,
        24,
        3,
    )
    assert config.model.base_channels == 16


def test_presets_per_dataset_and_corruption() -> None:
    for source, size in (("digits", 16), ("lfw", 32), ("natural", 32)):
        for corruption in NAMED_CORRUPTIONS:
            band = training_preset(f"{source}-{corruption}-band")
            assert band.noise.kind == "band" and band.data.source == source
            assert band.data.image_size == size and band.data.corruption is not None
            assert band.data.corruption["kind"] == NAMED_CORRUPTIONS[corruption]["kind"]
            omission = training_preset(f"{source}-{corruption}-omission")
            assert omission.noise.omit == omission.band and omission.project_trusted
            assert training_preset(f"{source}-{corruption}-full").data.corruption is None
    # The historical digits presets are the band-noise recipes.
    assert training_preset("digits-band") == training_preset("digits-band-noise-band")
    assert (
        corruption_recipes("periodic", roles=("band",))["band"].band
        == parse_corruption(NAMED_CORRUPTIONS["periodic"]).band_spec()
    )


def test_recipe_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--recipe", "band"],  # no corruption
        ["--recipe", "band", "--corruption", "nope"],
        ["--recipe", "band", "--corruption", '{"kind": "band_noise", "low": 0.3, "high": 0.1}'],
        ["--recipe", "band", "--corruption", "periodic", "--preset", "demo"],
        ["--recipe", "band", "--corruption", "periodic", "--noise", "{}"],
        ["--preset", "demo", "--band", "{}"],
    ):
        assert main(["train", *argv, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "needs --corruption" in err and "named corruptions: band-noise" in err


@pytest.mark.parametrize("role", ["omission", "band", "full"])
def test_tiny_recipe_training_run(role: str, tmp_path: Path) -> None:
    out = tmp_path / role
    assert main(tiny_recipe_argv(role, "band-noise", out, steps=3)) == 0
    model = load_model(out)
    assert model.config.role == role and model.meta["step"] == 3
    band = parse_corruption(NAMED_CORRUPTIONS["band-noise"]).band_spec()
    mask = band_mask(band, 16, 16)
    w = model.noise_op(16, 16).weights.cpu().numpy()
    if role == "omission":
        assert np.all(w[mask == 1] == 0)
    elif role == "band":
        assert np.all(w[mask == 0] == 0)
    else:
        assert np.all(w > 0)


def test_declared_noise_trains_a_band_model_on_images_as_they_are(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``--declared-corruption noise --band BAND --data FOLDER``: a band model of that band
    (forward noise flat in it), nothing applied to the images, and the declaration recorded."""
    band = '{"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}'
    config = _config(
        capsys, "--data", str(tmp_path), "--band", band, "--declared-corruption", "noise"
    )
    assert config.role == "band" and config.noise.kind == "band"
    assert config.noise.band == config.band and config.band is not None
    assert config.band.regions[0].kind == "annulus"
    assert config.data.source == str(tmp_path) and config.data.corruption is None
    assert config.data.declared_corruption == "noise"
    for argv in (
        ["--data", str(tmp_path), "--declared-corruption", "noise"],  # no band
        ["--band", band, "--declared-corruption", "noise", "--corruption", "band-noise"],
        ["--band", band, "--declared-corruption", "noise", "--recipe", "band"],
    ):
        assert main(["train", *argv, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "needs --band" in err and "already corrupted" in err
