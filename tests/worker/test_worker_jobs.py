"""Task bodies called directly with a fake engine: lifecycle, idempotency, failures, models."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from uuid import UUID, uuid4

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from service.jobs.contracts import TrainParams
from service.jobs.images import read_image
from tests.worker.worker_helpers import BAND, FakeEngine, new_restore_job
from worker.context import WorkerContext
from worker.engine import EngineError
from worker.jobs import analyze_body, execute, restore_body, train_body
from worker.previews import PreviewingProgress


def test_restore_succeeds_and_writes_results(wctx: WorkerContext, engine: FakeEngine) -> None:
    job_id = new_restore_job(wctx)
    assert execute(wctx, str(job_id), restore_body) == "succeeded"
    job = wctx.jobs.get(job_id)
    assert job is not None and job["state"] == "succeeded"
    assert int(job["step"]) == int(job["total"]) == engine.steps
    files = sorted(p.name for p in wctx.storage.job_dir(job_id).iterdir())
    assert files == ["input.png", "report.json", "result.png"]
    result = read_image(wctx.storage.job_file(job_id, "result.png"))
    source = read_image(wctx.storage.job_file(job_id, "input.png"))
    np.testing.assert_allclose(result, 1.0 - source, atol=1 / 255)
    report = json.loads(wctx.storage.job_file(job_id, "report.json").read_text())
    assert report["method"] == "notch" and report["device"] == "cpu"
    assert json.loads(job["result"])["residual"] == 0.0


def test_rerun_is_idempotent(wctx: WorkerContext, engine: FakeEngine) -> None:
    job_id = new_restore_job(wctx)
    execute(wctx, str(job_id), restore_body)
    first = wctx.storage.job_file(job_id, "result.png").read_bytes()
    assert execute(wctx, str(job_id), restore_body) == "terminal"  # re-delivery: nothing runs
    assert len(engine.restores) == 1
    assert wctx.storage.job_file(job_id, "result.png").read_bytes() == first
    assert execute(wctx, str(uuid4()), restore_body) == "missing"


def test_attempt_cap_gives_up(wctx: WorkerContext, engine: FakeEngine) -> None:
    job_id = new_restore_job(wctx)
    # Two claims that never finished (workers killed mid-job) use up max_attempts=2.
    assert wctx.jobs.claim(job_id, 2).outcome == "run"
    assert wctx.jobs.claim(job_id, 2).outcome == "run"
    assert execute(wctx, str(job_id), restore_body) == "failed"
    job = wctx.jobs.get(job_id) or {}
    assert job["error_code"] == "worker_lost"
    assert "worker lost too many times" in job["error_message"]
    assert engine.restores == []


def test_cancel_flag_stops_between_steps(wctx: WorkerContext, engine: FakeEngine) -> None:
    job_id = new_restore_job(wctx)
    engine.steps = 50
    calls = {"n": 0}
    original = wctx.jobs.progress

    def progress(job: object, step: int, total: int, message: str = "") -> bool:
        calls["n"] += 1
        if step == 5:
            wctx.jobs.request_cancel(job_id)  # the API's DELETE arrives mid-job
        return original(job, step, total, message)  # type: ignore[arg-type]

    wctx.jobs.progress = progress  # type: ignore[method-assign]
    assert execute(wctx, str(job_id), restore_body) == "cancelled"
    assert calls["n"] == 5  # stopped at the step that saw the flag
    assert not wctx.storage.job_file(job_id, "result.png").exists()


def test_cancel_before_start(wctx: WorkerContext, engine: FakeEngine) -> None:
    job_id = new_restore_job(wctx)
    assert wctx.jobs.request_cancel(job_id) == "cancelled"
    assert execute(wctx, str(job_id), restore_body) == "terminal"
    assert engine.restores == []


def test_failures_are_readable(wctx: WorkerContext, engine: FakeEngine) -> None:
    cases = [
        (SoftTimeLimitExceeded(), "time_limit", "time limit"),
        (EngineError("band too wide for this model"), "rejected", "band too wide"),
        (RuntimeError("/secret/path exploded"), "internal_error", "unexpected error"),
    ]
    for error, code, fragment in cases:
        engine.error, engine.raise_at = error, 2
        job_id = new_restore_job(wctx)
        assert execute(wctx, str(job_id), restore_body) == "failed"
        job = wctx.jobs.get(job_id) or {}
        assert job["error_code"] == code and fragment in job["error_message"]
        assert "/secret/path" not in job["error_message"]
    engine.error = None
    assert execute(wctx, str(new_restore_job(wctx)), restore_body) == "succeeded"


def test_webhook_queued_once_for_jobs_with_callback(
    wctx: WorkerContext, notified: list[str]
) -> None:
    plain = new_restore_job(wctx)
    hooked = new_restore_job(wctx, callback="https://93.184.216.34/hook")
    execute(wctx, str(plain), restore_body)
    execute(wctx, str(hooked), restore_body)
    execute(wctx, str(hooked), restore_body)
    assert notified == [str(hooked)]


def _add_model(ctx: WorkerContext, tmp: Path, name: str) -> int:
    staged = tmp / f"stage-{uuid4()}"
    staged.mkdir()
    return ctx.registry.add_version(name, staged, {"kind": "omission"})


def test_models_loaded_once_and_hot_reloaded(
    wctx: WorkerContext, engine: FakeEngine, tmp_path: Path
) -> None:
    _add_model(wctx, tmp_path, "demo")
    for _ in range(3):
        job = new_restore_job(wctx, method="sagd", models=[{"name": "demo"}])
        assert execute(wctx, str(job), restore_body) == "succeeded"
    assert [p.name for p in engine.loaded] == ["1"]
    assert _add_model(wctx, tmp_path, "demo") == 2  # a training job elsewhere adds v2
    job = new_restore_job(wctx, method="sagd", models=[{"name": "demo"}])
    execute(wctx, str(job), restore_body)
    assert [p.name for p in engine.loaded] == ["1", "2"]
    report = json.loads(wctx.storage.job_file(job, "report.json").read_text())
    assert report["models"] == {"demo": 2} and report["model"] == "demo:2"
    pinned = new_restore_job(wctx, method="sagd", models=[{"name": "demo", "version": 1}])
    execute(wctx, str(pinned), restore_body)
    assert len(engine.loaded) == 2  # v1 still cached
    missing = new_restore_job(wctx, method="sagd", models=[{"name": "nope"}])
    assert execute(wctx, str(missing), restore_body) == "failed"
    assert "nope" in (wctx.jobs.get(missing) or {})["error_message"]


def test_auto_loads_the_models_it_names_only_and_then_sends_previews(
    wctx: WorkerContext, engine: FakeEngine, tmp_path: Path
) -> None:
    _add_model(wctx, tmp_path, wctx.settings.default_model)
    _add_model(wctx, tmp_path, "mine")
    free = new_restore_job(wctx, method="auto")
    assert execute(wctx, str(free), restore_body) == "succeeded"
    assert engine.loaded == []  # model-free: not the default model
    assert not isinstance(engine.progress[-1], PreviewingProgress)
    named = new_restore_job(wctx, method="auto", models=[{"name": "mine"}])
    assert execute(wctx, str(named), restore_body) == "succeeded"
    assert [p.parent.name for p in engine.loaded] == ["mine"]
    report = json.loads(wctx.storage.job_file(named, "report.json").read_text())
    assert report["model"] == "mine:1" and report["method"] == "auto"
    assert isinstance(engine.progress[-1], PreviewingProgress)  # a network may run: previews


def test_uncertainty_map_written(wctx: WorkerContext, engine: FakeEngine) -> None:
    engine.uncertainty = True
    job = new_restore_job(wctx, samples=4)
    execute(wctx, str(job), restore_body)
    assert read_image(wctx.storage.job_file(job, "uncertainty.png")).shape == (8, 10, 1)
    report = json.loads(wctx.storage.job_file(job, "report.json").read_text())
    assert abs(report["uncertainty_scale"] - 0.1) < 1e-6


def _train_job(ctx: WorkerContext, **params: object) -> str:
    job_id = uuid4()
    values = {"model_name": "faces", "band": BAND, "dataset": "digits", "steps": 4, **params}
    ctx.storage.job_dir(job_id, create=True)
    ctx.jobs.create(
        job_id,
        kind="train",
        owner="o",
        params=TrainParams.model_validate(values).model_dump(mode="json"),
    )
    return str(job_id)


def test_training_adds_a_registry_version(wctx: WorkerContext) -> None:
    job = _train_job(wctx)
    assert execute(wctx, job, train_body) == "succeeded"
    result = json.loads((wctx.jobs.get(job) or {})["result"])
    assert result["model"] == "faces" and result["version"] == 1
    version, directory = wctx.registry.resolve("faces")
    assert version == 1 and (directory / "config.json").is_file()
    assert "loss=" in (wctx.jobs.get(job) or {})["message"]
    assert not list(directory.parent.glob(".staging-*"))


def test_training_from_uploaded_zip(wctx: WorkerContext) -> None:
    from tests.harness import png_bytes

    job = _train_job(wctx, dataset=None)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(3):
            archive.writestr(f"{i}.png", png_bytes(seed=i))
    wctx.storage.write_bytes(wctx.storage.job_file(UUID(job), "dataset.zip"), buffer.getvalue())
    assert execute(wctx, job, train_body) == "succeeded"
    assert json.loads((wctx.jobs.get(job) or {})["result"])["scores"]["images"] == 3


def test_analyze(wctx: WorkerContext) -> None:
    job_id = new_restore_job(wctx)
    wctx.jobs.r.hset(f"sagd:job:{job_id}", mapping={"kind": "analyze", "params": "{}"})
    assert execute(wctx, str(job_id), analyze_body) == "succeeded"
    result = json.loads((wctx.jobs.get(job_id) or {})["result"])
    assert result["proposed_band"] == BAND and result["shape"] == [8, 10, 1]
    assert wctx.storage.job_file(job_id, "analysis.json").is_file()


def test_hard_time_limit_marks_the_job_failed(wctx: WorkerContext, notified: list[str]) -> None:
    from celery.exceptions import TimeLimitExceeded

    from worker import context
    from worker.tasks import JobTask

    job_id = new_restore_job(wctx, callback="https://93.184.216.34/hook")
    wctx.jobs.claim(job_id, 3)
    context.set_context(wctx)
    try:
        JobTask().on_failure(TimeLimitExceeded(8), str(job_id), [str(job_id)], {}, None)
        JobTask().on_failure(RuntimeError("lost"), str(job_id), [str(job_id)], {}, None)
    finally:
        context.set_context(None)
    job = wctx.jobs.get(job_id) or {}
    assert job["state"] == "failed" and job["error_code"] == "time_limit"
    assert "hard time limit" in job["error_message"]
    assert notified == [str(job_id)]


def test_the_job_record_carries_the_warnings_and_what_was_done_per_band() -> None:
    """A classical restore whose guard falls back to the notch: the job record (what
    ``GET /v1/jobs/{id}`` shows) carries the report's warning and the band's action."""
    from sagd_core.restore import RestoreRequest, restore
    from worker.jobs import job_summary

    n = 64
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:n, :n] / n
    smooth = 0.5 + 0.2 * np.sin(2 * np.pi * yy) * np.cos(2 * np.pi * xx)
    r = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    noise = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) * ((r >= 0.2) & (r < 0.3))).real
    image = smooth + noise * 0.05 / noise.std()
    band = {"regions": [{"kind": "annulus", "low": 0.2, "high": 0.3}]}
    report = restore(image, RestoreRequest(band=band, method="classical")).report
    summary = json.loads(json.dumps(job_summary(report)))
    assert summary["method"] == "classical"
    assert summary["band_actions"] == ["omitted"]
    assert summary["warnings"] == report["warnings"] and "notch" in summary["warnings"][0]
