"""The default natural-image model that ships in ``sagd_core/models/default/``: it loads from
safetensors, is a full-support RGB model, fills a band with ``ddnm`` (RGB, and gray through the RGB
model) keeping the trusted bins exactly, and its recipe and training images are what the model
card says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sagd_core.bench.default_model.data import default_training_images, dihedral, half_scale
from sagd_core.data.dead_leaves import dead_leaves
from sagd_core.models.default import DEFAULT_MODEL_DIR
from sagd_core.restore.engine import restore
from sagd_core.restore.gray_via_rgb import to_rgb
from sagd_core.restore.models import ModelSet, load_model
from sagd_core.restore.request import RestoreRequest
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.masks import band_mask
from sagd_core.training import training_preset
from sagd_core.training.presets import DEFAULT_DATA, DEFAULT_PATCH

BAND = BandSpec.model_validate({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})


@pytest.fixture(scope="module")
def models() -> ModelSet:
    return ModelSet(full=load_model(DEFAULT_MODEL_DIR))


def test_the_shipped_files_are_safetensors_and_json_and_small() -> None:
    names = sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir())
    assert names == ["config.json", "ema.safetensors", "meta.json"]
    total = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert total < 10 * 2**20
    card = (DEFAULT_MODEL_DIR.parent / "MODEL_CARD.md").read_text()
    assert "make default-model" in card


def test_the_model_is_a_full_support_rgb_model(models: ModelSet) -> None:
    model = models.full
    assert model is not None
    assert model.channels == 3 and model.config.model.resolved_out_channels == 3
    assert model.config.role == "full" and model.config.noise.kind == "white"
    assert model.config.noise.omit is None and model.config.data.image_size >= 64
    assert model.config == training_preset("default")  # the shipped model is the preset's
    meta = model.meta
    assert meta["step"] == model.config.steps
    losses = [loss for _, loss in meta["loss_history"]]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert meta["build"]["data"]["images"] == sum(
        DEFAULT_DATA[k] for k in ("natural_patches", "natural_half_scale_patches", "leaves_patches")
    )
    assert "optimizer" not in meta  # resume state is not shipped
    json.dumps(meta)


def _scene(channels: int, size: int = 32) -> np.ndarray:
    return 0.15 + 0.7 * dead_leaves(size, channels, seed=123)


def _band_energy(x: np.ndarray) -> float:
    chw = x[None] if x.ndim == 2 else np.moveaxis(x, -1, 0)
    mask = band_mask(BAND, *chw.shape[1:])
    return float(np.sum(np.abs(np.fft.rfft2(chw)) ** 2 * mask))


def _trusted_residual(a: np.ndarray, b: np.ndarray) -> float:
    """The largest trusted-bin difference of ``a`` and ``b``, relative to ``b``'s largest bin."""
    chw_a, chw_b = (x[None] if x.ndim == 2 else np.moveaxis(x, -1, 0) for x in (a, b))
    mask = band_mask(BAND, *chw_b.shape[1:])
    diff = np.abs(np.fft.rfft2(chw_a - chw_b) * (1.0 - mask))
    return float(diff.max() / np.abs(np.fft.rfft2(chw_b)).max())


@pytest.mark.parametrize("channels", [3, 1])
def test_ddnm_fills_the_band_and_keeps_the_rest(models: ModelSet, channels: int) -> None:
    y = _scene(channels)
    request = RestoreRequest(band=BAND, method="ddnm", steps=6, seed=1)
    out = restore(y, request, models)
    notch = restore(y, RestoreRequest(band=BAND, method="notch")).unclipped
    assert out.unclipped.shape == y.shape and np.all(np.isfinite(out.unclipped))
    assert out.report["bands"][0]["action"] == "filled"
    assert ("gray_via_rgb" in out.report["details"]) == (channels == 1)
    # the notch leaves the band empty; the model puts content there and keeps the trusted bins
    assert _band_energy(notch) < 1e-12 * _band_energy(y)
    assert _band_energy(out.unclipped) > 1e-3 * _band_energy(y)
    assert np.max(np.abs(out.unclipped - notch)) > 1e-3
    assert _trusted_residual(out.unclipped, y) < 1e-6


def test_a_gray_image_runs_as_three_equal_channels() -> None:
    gray = np.arange(12.0).reshape(1, 1, 3, 4) / 12
    rgb = to_rgb(gray)
    assert rgb.shape == (1, 3, 3, 4) and np.array_equal(rgb[:, 0], gray[:, 0])
    assert np.array_equal(rgb[:, 2], gray[:, 0])


def test_half_scale_averages_blocks_and_dihedral_only_moves_pixels() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 8, 8)).astype(np.float32)
    half = half_scale(x)
    assert half.shape == (5, 3, 4, 4) and half.dtype == np.float32
    np.testing.assert_allclose(half[2, 1, 1, 3], x[2, 1, 2:4, 6:8].mean(), rtol=1e-6)
    turned = dihedral(x, seed=3)
    assert turned.shape == x.shape
    for k in range(len(x)):  # the same pixels, maybe rearranged
        np.testing.assert_array_equal(np.sort(turned[k], axis=None), np.sort(x[k], axis=None))
    assert not np.array_equal(turned, x)  # 5 patches: some moved (fixed seed)
    np.testing.assert_array_equal(dihedral(x, seed=3), turned)


def test_training_images_mix() -> None:
    mix = {
        **DEFAULT_DATA,
        "natural_patches": 6,
        "natural_half_scale_patches": 4,
        "leaves_scenes": 2,
        "leaves_scene_size": 64,
        "leaves_patches": 5,
    }
    images = default_training_images(mix, patch=16)
    assert images.shape == (15, 3, 16, 16) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert np.array_equal(images, default_training_images(mix, patch=16))  # deterministic
    # gray photos and gray dead-leaves scenes are in it as three equal channels
    gray = [np.array_equal(im[0], im[1]) and np.array_equal(im[1], im[2]) for im in images]
    assert any(gray) and not all(gray)


def test_the_preset_is_a_purely_convolutional_rgb_full_model() -> None:
    config = training_preset("default")
    assert config.role == "full" and config.noise.kind == "white" and not config.project_trusted
    assert config.data.image_size == DEFAULT_PATCH >= 64 and config.data.channels == 3
    assert config.data.source == "natural" and config.data.split == "train"
    assert config.model.attention_levels == () and not config.model.mid_attention


def test_the_benchmark_scores_every_column(models: ModelSet) -> None:
    from sagd_core.bench.default_model.evaluate import COLUMNS, markdown, run_scene
    from sagd_core.bench.real import corrupt, psnr
    from sagd_core.bench.scenes import Scene

    scene = Scene("leaves-test", _scene(1, size=48))
    rows = run_scene(scene, "band_noise", 0.0, models, steps=3, seed=0)
    assert [r["column"] for r in rows] == list(COLUMNS)
    by = {r["column"]: r for r in rows}
    assert all(np.isfinite(r["psnr"]) for r in rows)
    y, _ = corrupt(scene, "band_noise", 0.0, 0)  # the input column scores the input
    assert by["identity"]["psnr"] == pytest.approx(psnr(y, scene.image))
    assert by["ddnm"]["psnr"] != by["notch"]["psnr"] and by["ddnm"]["seconds"] > 0
    table = markdown(rows)
    assert "| band_noise σ=0 | 1 |" in table
