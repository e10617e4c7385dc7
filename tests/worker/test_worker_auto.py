"""An ``auto`` job that names a registered model, through the real engine and library: the worker
loads the model (a real checkpoint of an untrained tiny band model) and hands it to
``sagd_core.restore.restore``, whose report (``details.auto``, and a warning when the model is
not used) is stored with the job. Without a model, ``auto`` loads none, not even the default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import numpy as np
import pytest

from service.jobs.contracts import RestoreParams
from service.jobs.images import encode_png
from service.settings import Settings
from worker.context import WorkerContext
from worker.engine import CoreEngine
from worker.jobs import execute, restore_body

#: The corruption the model is "trained" on: noise in an annulus (a noise-like band, which is
#: the only kind ``auto`` has a learned read for).
CORRUPTION = {"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": 0.3}
SIZE = 64


class CountingEngine(CoreEngine):
    """The real engine, counting the checkpoints it loads."""

    def __init__(self) -> None:
        self.loaded: list[Path] = []

    def load_model(self, directory: Path, device: str) -> Any:
        self.loaded.append(directory)
        return super().load_model(directory, device)


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine()


@pytest.fixture
def wctx(tmp_path: Path, redis_url: str, engine: CountingEngine) -> WorkerContext:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, storage_root=tmp_path / "storage", redis_url=redis_url, device="cpu"
    )
    return WorkerContext.build(settings, engine=engine, notify=lambda job_id: None)


def _band() -> dict[str, Any]:
    from sagd_core.data.corruptions import parse_corruption

    spec: dict[str, Any] = parse_corruption(CORRUPTION).band_spec().model_dump(mode="json")
    return spec


def _register_band_model(ctx: WorkerContext, tmp_path: Path, name: str, *, corrupted: bool) -> int:
    """A registry version holding a real checkpoint: an untrained ``cpu-tiny`` band model whose
    config says it was trained on ``CORRUPTION``'d images (``corrupted``) or on clean ones."""
    import torch

    from sagd_core.checkpoint import save_checkpoint
    from sagd_core.models import UNet, unet_preset
    from sagd_core.spectral import NoiseSpec, parse_band_spec
    from sagd_core.training.config import DataConfig, TrainConfig

    band = parse_band_spec(_band())
    config = TrainConfig(
        model=unet_preset("cpu-tiny", 1),
        noise=NoiseSpec(kind="band", band=band),
        band=band,
        role="band",
        data=DataConfig(corruption=CORRUPTION if corrupted else None),
    )
    torch.manual_seed(0)
    net = UNet(config.model)
    staged = tmp_path / f"stage-{uuid4()}"
    save_checkpoint(
        staged,
        tensors={"ema": dict(net.state_dict())},
        config=config.model_dump(mode="json"),
        meta={},
    )
    return ctx.registry.add_version(name, staged, {"kind": "band", "channels": 1})


def _auto_job(ctx: WorkerContext, **params: Any) -> UUID:
    """An auto restoration of a gray image carrying noise in the band."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    clean = 0.5 + 0.2 * np.sin(2 * np.pi * (1.5 * x + 0.5 * y))
    pixels = np.clip(clean + 0.05 * rng.standard_normal((SIZE, SIZE)), 0, 1)
    job_id = uuid4()
    ctx.storage.job_dir(job_id, create=True)
    ctx.storage.write_bytes(
        ctx.storage.job_file(job_id, "input.png"), encode_png(pixels[..., None].astype(np.float32))
    )
    values = {"band": _band(), "method": "auto", **params}
    ctx.jobs.create(
        job_id,
        kind="restore",
        owner="o",
        params=RestoreParams.model_validate(values).model_dump(mode="json"),
    )
    return job_id


def _report(ctx: WorkerContext, job_id: UUID) -> dict[str, Any]:
    assert execute(ctx, str(job_id), restore_body) == "succeeded", ctx.jobs.get(job_id)
    report: dict[str, Any] = json.loads(ctx.storage.job_file(job_id, "report.json").read_text())
    return report


def test_auto_runs_a_named_corruption_shaped_band_model_and_no_model_unnamed(
    wctx: WorkerContext, engine: CountingEngine, tmp_path: Path
) -> None:
    """One corruption-shaped band model, registered as the server's default model: ``auto``
    without ``model=`` loads nothing (the classical tier); naming it loads it and the engine
    takes its learned route, saying why."""
    from sagd_core.restore.methods.corruption_shaped import corruption_shaped_reason
    from sagd_core.restore.models import load_model

    name = wctx.settings.default_model
    _register_band_model(wctx, tmp_path, name, corrupted=True)
    unnamed = _report(wctx, _auto_job(wctx))
    assert engine.loaded == []
    assert "model" not in unnamed and unnamed["details"]["auto"]["chosen"] == "classical"
    assert not any(w.startswith("method 'auto' did not use") for w in unnamed["warnings"])

    report = _report(wctx, _auto_job(wctx, models=[{"name": name}]))
    assert [p.parent.name for p in engine.loaded] == [name]
    assert report["method"] == "auto" and report["model"] == f"{name}:1"
    # The engine took the learned route and says why: the model's own reason is quoted.
    reason = corruption_shaped_reason(load_model(engine.loaded[0]))
    assert reason is not None
    auto = report["details"]["auto"]
    assert auto["chosen"] in ("sagd", "classical")  # the guard decides per region
    assert reason in auto["why"]
    assert "guard" in report["details"]


def test_auto_says_when_a_named_model_is_not_used(
    wctx: WorkerContext, engine: CountingEngine, tmp_path: Path
) -> None:
    _register_band_model(wctx, tmp_path, "clean-trained", corrupted=False)
    job_id = _auto_job(wctx, models=[{"name": "clean-trained"}])
    report = _report(wctx, job_id)
    assert [p.parent.name for p in engine.loaded] == ["clean-trained"]
    assert report["model"] == "clean-trained:1"
    auto = report["details"]["auto"]
    assert auto["chosen"] == "classical" and auto["why"]
    unused = [w for w in report["warnings"] if w.startswith("method 'auto' did not use")]
    assert len(unused) == 1, report["warnings"]
    # GET /v1/jobs/{id} shows the warning too (the record's result summary)
    summary = json.loads((wctx.jobs.get(job_id) or {})["result"])
    assert unused[0] in summary["warnings"]
