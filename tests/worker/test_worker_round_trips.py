"""The worker's Redis round trips per job: the claim brings the record back, the finish records
the metrics, and the last progress report rides on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import pytest

from service.jobs.metrics import KEY, job_finished_updates, steps_updates
from service.jobs.storage import Storage
from tests.worker.worker_helpers import FakeEngine, new_restore_job
from worker.context import WorkerContext
from worker.jobs import execute, restore_body


def _counters(ctx: WorkerContext) -> dict[str, float]:
    """The metric counters these tests look at (the session's Redis is shared: compare deltas)."""

    def read(name: str) -> dict[str, str]:
        return cast(dict[str, str], ctx.jobs.r.hgetall(f"{KEY}:{name}"))

    jobs, latency, steps = read("jobs"), read("latency:restore"), read("steps")
    return {
        "succeeded": float(jobs.get("restore|succeeded", 0)),
        "cancelled": float(jobs.get("restore|cancelled", 0)),
        "latency": float(latency.get("+Inf", 0)),
        "steps": float(steps.get("steps", 0)),
    }


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in before}


def test_claim_returns_the_record_it_left(wctx: WorkerContext) -> None:
    job_id = new_restore_job(wctx)
    claim = wctx.jobs.claim(job_id, 3)
    assert claim.outcome == "run" and claim.attempts == 1
    assert claim.job == wctx.jobs.get(job_id)
    assert claim.job is not None and claim.job["state"] == "running"
    wctx.jobs.finish(job_id, "succeeded")
    terminal = wctx.jobs.claim(job_id, 3)
    assert terminal.outcome == "terminal" and terminal.job is None
    assert wctx.jobs.claim(uuid4(), 3).job is None


def test_finish_counts_once_and_reports_the_state(wctx: WorkerContext) -> None:
    job_id = new_restore_job(wctx)
    wctx.jobs.claim(job_id, 3)
    before = _counters(wctx)
    counters = job_finished_updates("restore", "succeeded", 0.2)
    always = steps_updates(3, 0.5)
    ended = wctx.jobs.finish_counted(
        job_id, "succeeded", {"result": {"x": 1}}, counters=counters, always=always
    )
    assert ended == "succeeded"
    assert _delta(before, _counters(wctx)) == {
        "succeeded": 1,
        "cancelled": 0,
        "latency": 1,
        "steps": 3,
    }
    again = wctx.jobs.finish_counted(
        job_id, "failed", {}, counters=job_finished_updates("restore", "failed", 0.2), always=always
    )
    assert again is None  # already final: not counted again, its steps are
    assert _delta(before, _counters(wctx))["steps"] == 6
    assert (wctx.jobs.get(job_id) or {})["state"] == "succeeded"
    with pytest.raises(ValueError):
        wctx.jobs.finish_counted(job_id, "failed", {}, counters=[("DEL", f"{KEY}:jobs", "x", 1)])


def test_a_cancel_wins_over_success_only_when_asked(wctx: WorkerContext) -> None:
    plain, asked = new_restore_job(wctx), new_restore_job(wctx)
    for job_id in (plain, asked):
        wctx.jobs.claim(job_id, 3)
        assert wctx.jobs.request_cancel(job_id) == "cancelling"
    assert wctx.jobs.finish_counted(plain, "succeeded", {}) == "succeeded"
    before = _counters(wctx)
    ended = wctx.jobs.finish_counted(
        asked,
        "succeeded",
        {"result": {"x": 1}},
        counters=job_finished_updates("restore", "succeeded", 0.2),
        cancel_wins=True,
        if_cancelled=job_finished_updates("restore", "cancelled", 0.2),
    )
    assert ended == "cancelled"
    job = wctx.jobs.get(asked) or {}
    assert job["state"] == "cancelled" and job["error_code"] == "cancelled"
    assert "result" not in job
    assert _delta(before, _counters(wctx)) == {
        "succeeded": 0,
        "cancelled": 1,
        "latency": 1,
        "steps": 0,
    }


def test_a_job_records_its_metrics_with_its_final_state(wctx: WorkerContext) -> None:
    before = _counters(wctx)
    job_id = new_restore_job(wctx)
    assert execute(wctx, str(job_id), restore_body) == "succeeded"
    assert _delta(before, _counters(wctx)) == {
        "succeeded": 1,
        "cancelled": 0,
        "latency": 1,
        "steps": 3,
    }
    job = wctx.jobs.get(job_id) or {}
    assert job["step"] == job["total"] == "3"  # the deferred last report, written with it


def test_a_cancel_during_the_last_step_ends_the_job_cancelled(
    wctx: WorkerContext, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = new_restore_job(wctx)
    original = wctx.jobs.progress
    sent: list[int] = []

    def progress(job: Any, step: int, total: int, message: str = "") -> bool:
        sent.append(step)
        return original(job, step, total, message)

    def restore(image: Any, params: Any, models: Any, *, device: str, progress: Any) -> Any:
        for step in (1, 2, 3):
            if step == 3:
                wctx.jobs.request_cancel(job_id)  # the DELETE arrives during the last step
            progress(step, 3)
        return FakeEngine.restore(engine, image, params, models, device=device, progress=_none)

    monkeypatch.setattr(wctx.jobs, "progress", progress)
    monkeypatch.setattr(engine, "restore", restore)
    engine.steps = 0
    before = _counters(wctx)
    assert execute(wctx, str(job_id), restore_body) == "cancelled"
    assert sent == [1, 2]  # the last report was not a round trip of its own
    assert (wctx.jobs.get(job_id) or {})["state"] == "cancelled"
    delta = _delta(before, _counters(wctx))
    assert delta["cancelled"] == 1 and delta["succeeded"] == 0


def _none(step: int, total: int) -> None:
    return None


def test_write_job_files_replaces_whole_files(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    storage.write_job_files(tmp_path, {"result.png": b"old", "report.json": b"{}"})
    storage.write_job_files(tmp_path, {"result.png": b"new"})
    assert (tmp_path / "result.png").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "result.png"]
    assert (tmp_path / "result.png").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        storage.write_job_files(tmp_path, {"../escape.png": b"x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "result.png"]
