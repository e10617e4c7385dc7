"""The real engine on the real library (fast paths only) and the models cache."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.jobs.contracts import RestoreParams, TrainParams
from service.jobs.registry import ModelNotFoundError, ModelRegistry, checkpoint_fields
from service.jobs.storage import Storage
from worker.engine import CoreEngine, EngineError, jsonable
from worker.models_cache import ModelsCache

BAND = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}


def test_notch_restore_through_the_library() -> None:
    engine = CoreEngine()
    image = np.random.default_rng(0).random((32, 40, 1)).astype(np.float32)
    steps: list[tuple[int, int]] = []
    out = engine.restore(
        image,
        RestoreParams(band=BAND, method="notch"),
        [],
        device="cpu",
        progress=lambda s, t: steps.append((s, t)),
    )
    assert out.image.shape == image.shape and out.image.dtype == np.float32
    assert steps and steps[-1][0] == steps[-1][1]
    json.dumps(out.report)  # plain JSON
    assert "notch" in engine.capabilities()["methods"]


def test_library_refusals_become_engine_errors() -> None:
    engine = CoreEngine()
    image = np.zeros((32, 32, 1), np.float32)
    with pytest.raises(EngineError):  # sagd without any model cannot restore
        engine.restore(
            image,
            RestoreParams(band=BAND, method="ddnm"),
            [],
            device="cpu",
            progress=lambda s, t: None,
        )
    bad = TrainParams(model_name="m", band=BAND, dataset="digits", unet="no-such-preset")
    with pytest.raises(EngineError, match="U-Net preset"):
        engine.train(
            bad, Path("/nonexistent"), images=None, device="cpu", progress=lambda s, t, v: None
        )


def test_jsonable() -> None:
    @dataclass
    class Row:
        value: float

    raw = {"a": np.float32(1.5), "b": np.arange(3), "c": (Row(2.0),), "d": float("nan"), 1: None}
    assert jsonable(raw) == {"a": 1.5, "b": [0, 1, 2], "c": [{"value": 2.0}], "d": None, "1": None}


def test_models_cache_lru_and_reload(tmp_path: Path) -> None:
    registry = ModelRegistry(Storage(tmp_path))
    loads: list[Path] = []

    def loader(directory: Path, device: str) -> Any:
        loads.append(directory)
        return directory.name

    cache = ModelsCache(registry, loader, "cpu", capacity=2)
    with pytest.raises(ModelNotFoundError):
        cache.get("a")
    for name in ("a", "b", "c"):
        staged = tmp_path / f"s-{name}"
        staged.mkdir()
        registry.add_version(name, staged, {})
    assert cache.get("a") == (1, "1") and cache.get("a") == (1, "1")
    cache.get("b")
    cache.get("c")  # evicts a (least recently used)
    cache.get("a")
    assert [p.parent.name for p in loads] == ["a", "b", "c", "a"]
    staged = tmp_path / "s-a2"
    staged.mkdir()
    registry.add_version("a", staged, {})
    assert cache.get("a")[0] == 2  # the new default, without a restart
    registry.set_default("a", 1)
    assert cache.get("a")[0] == 1


def test_analyze_proposes_a_band_for_periodic_noise() -> None:
    _, x = np.mgrid[0:64, 0:64]
    rng = np.random.default_rng(0)
    image = 0.5 + 0.02 * rng.standard_normal((64, 64)) + 0.2 * np.cos(2 * np.pi * 0.25 * x)
    result = CoreEngine().analyze(np.clip(image, 0, 1)[..., None].astype(np.float32))
    json.dumps(result)
    regions = result["band_spec"]["regions"]
    assert any(r["kind"] == "notch" and abs(abs(r["fx"]) - 0.25) < 0.03 for r in regions)


def test_the_requested_schedule_reaches_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    import sagd_core.restore as library

    seen: list[Any] = []
    real = library.restore

    def spy(image: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(request)
        return real(image, request, *args, **kwargs)

    monkeypatch.setattr(library, "restore", spy)
    image = np.random.default_rng(1).random((32, 32, 1)).astype(np.float32)
    for kind in ("model", "cosine", "fit"):
        params = RestoreParams(band=BAND, method="notch", schedule=kind)
        CoreEngine().restore(image, params, [], device="cpu", progress=lambda s, t: None)
    assert [r.schedule.kind for r in seen] == ["model", "cosine", "fit"]


def test_band_training_on_a_builtin_dataset_calibrates_the_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fill of a band model trained by a job is calibrated on the dataset's test split, so a
    restore through the service reads it as the bench does; other jobs are left alone."""
    import worker.engine as engine_module
    from sagd_core.restore.models import CALIBRATION_FILE, load_model

    monkeypatch.setattr(engine_module, "CALIBRATION", {"count": 4, "steps": 2, "samples": 1})
    engine = CoreEngine()
    reported: list[dict[str, float]] = []
    params = TrainParams(
        model_name="m",
        band={"regions": [{"kind": "annulus", "low": 0.2, "high": 0.35}]},
        dataset="digits",
        synthetic_corruption={"kind": "band_noise", "gamma": 1.0, "low": 0.2, "high": 0.35},
        model_kind="band",
        steps=2,
        batch_size=4,
        unet="cpu-tiny",
    )
    meta = engine.train(
        params,
        tmp_path / "band",
        images=None,
        device="cpu",
        progress=lambda s, t, v: reported.append(v),
    )
    assert meta["kind"] == "band" and meta["channels"] == 1  # digits are gray
    assert 0.0 <= meta["scores"]["fill_gain"] <= 1.0
    assert meta["scores"]["fill_calibration_images"] == 4
    assert any("calibrating_fill" in v for v in reported)
    calib = json.loads((tmp_path / "band" / CALIBRATION_FILE).read_text())
    assert calib["gain"] == meta["scores"]["fill_gain"]
    assert load_model(tmp_path / "band").meta["fill_calibration"]["images"] == 4
    omission = params.model_copy(update={"model_kind": "omission"})
    meta = engine.train(
        omission, tmp_path / "omission", images=None, device="cpu", progress=lambda s, t, v: None
    )
    assert "fill_gain" not in meta["scores"]
    assert not (tmp_path / "omission" / CALIBRATION_FILE).exists()


def test_a_model_trains_on_uploaded_images(tmp_path: Path) -> None:
    """An uploaded dataset (decoded images of any size, gray and RGB mixed) trains an RGB model."""
    from sagd_core.restore.models import load_model

    rng = np.random.default_rng(0)
    images = [rng.random((20, 28, 1)).astype(np.float32) for _ in range(3)]
    images.append(rng.random((24, 24, 3)).astype(np.float32))
    params = TrainParams(
        model_name="uploaded",
        band=BAND,
        model_kind="omission",
        steps=2,
        batch_size=2,
        image_size=16,
        unet="cpu-tiny",
    )
    meta = CoreEngine().train(
        params, tmp_path / "m", images=images, device="cpu", progress=lambda s, t, v: None
    )
    assert meta["kind"] == "omission" and meta["scores"]["steps"] == 2
    assert load_model(tmp_path / "m").channels == 3
    # The registry records the channels (the API refuses gray images for it at submit), and an
    # entry without them reads them from the checkpoint's config.json.
    assert meta["channels"] == 3
    assert checkpoint_fields(tmp_path / "m") == {"kind": "omission", "channels": 3}


def test_a_band_model_on_uploaded_images_declared_noisy_is_corruption_shaped(
    tmp_path: Path,
) -> None:
    """``declared_corruption="noise"`` reaches the training config, so the band model trained on
    a user's own corrupted images is one that ``auto`` reads in one call; without it, not."""
    from sagd_core.restore.methods.corruption_shaped import corruption_shaped_reason
    from sagd_core.restore.models import load_model

    rng = np.random.default_rng(1)
    images = [rng.random((24, 24, 1)).astype(np.float32) for _ in range(3)]
    params = TrainParams(
        model_name="own",
        band=BAND,
        model_kind="band",
        declared_corruption="noise",
        steps=2,
        batch_size=2,
        image_size=16,
        unet="cpu-tiny",
    )
    engine = CoreEngine()
    engine.train(params, tmp_path / "d", images=images, device="cpu", progress=lambda *a: None)
    declared = load_model(tmp_path / "d")
    assert declared.config.data.declared_corruption == "noise"
    assert "declared" in str(corruption_shaped_reason(declared))
    plain = params.model_copy(update={"declared_corruption": None})
    engine.train(plain, tmp_path / "p", images=images, device="cpu", progress=lambda *a: None)
    assert corruption_shaped_reason(load_model(tmp_path / "p")) is None


def test_auto_is_numpy_only_where_the_band_reader_does_not_apply() -> None:
    """``auto`` without a model is cheap (one thread, micro-batched) only where it runs the
    classical tier alone; on a noise band, or a fitted band with declared broadband noise, it
    runs the shipped band reader (a network) and is scheduled like a learned method."""
    noise = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}
    sinusoid = {"regions": [{"kind": "notch", "fy": 0.1, "fx": 0.05, "radius": 0.02}]}
    assert RestoreParams(band=sinusoid, method="auto").is_numpy_only
    assert RestoreParams(band=noise, method="classical").is_numpy_only
    for params in (
        RestoreParams(band=noise, method="auto"),
        RestoreParams(band=sinusoid, method="auto", input_noise_std=0.04),
    ):
        assert params.is_model_free and not params.is_numpy_only
