"""Micro-batching: several jobs in one task (``execute_many``), each with its own lifecycle."""

from __future__ import annotations

import os

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from tests.worker.worker_helpers import FakeEngine, new_restore_job
from worker.context import WorkerContext
from worker.jobs import execute_many, restore_body


def test_chunk_runs_every_job_and_skips_final_or_cancelled(
    wctx: WorkerContext, engine: FakeEngine
) -> None:
    ids = [new_restore_job(wctx) for _ in range(4)]
    assert wctx.jobs.request_cancel(ids[1]) == "cancelled"  # cancelled while queued
    requeued: list[list[str]] = []
    counts = execute_many(wctx, [str(i) for i in ids], restore_body, requeued.append)
    assert counts == {"succeeded": 3, "terminal": 1}
    states = [(wctx.jobs.get(i) or {})["state"] for i in ids]
    assert states == ["succeeded", "cancelled", "succeeded", "succeeded"]
    assert len(engine.restores) == 3 and requeued == []
    for job_id in (ids[0], ids[2], ids[3]):
        assert wctx.storage.job_file(job_id, "result.png").is_file()
    # a re-delivered chunk (worker lost after the last job) does nothing again
    assert execute_many(wctx, [str(i) for i in ids], restore_body, requeued.append) == {
        "terminal": 4
    }
    assert len(engine.restores) == 3


def test_soft_limit_fails_one_job_and_requeues_the_rest(
    wctx: WorkerContext, engine: FakeEngine
) -> None:
    ids = [str(new_restore_job(wctx)) for _ in range(4)]
    original = engine.restore
    calls = 0

    def restore_then_time_out(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise SoftTimeLimitExceeded()
        return original(*args, **kwargs)

    engine.restore = restore_then_time_out  # type: ignore[method-assign]
    requeued: list[list[str]] = []
    counts = execute_many(wctx, ids, restore_body, requeued.append)
    assert counts == {"succeeded": 1, "failed": 1}
    assert (wctx.jobs.get(ids[1]) or {})["error_code"] == "time_limit"
    assert requeued == [ids[2:]]
    # the requeued jobs were never claimed: no attempt charged, still queued
    for job_id in ids[2:]:
        job = wctx.jobs.get(job_id) or {}
        assert job["state"] == "queued" and job["attempts"] == "0"


def test_soft_limit_between_jobs_requeues_the_unfinished_one(
    wctx: WorkerContext, engine: FakeEngine
) -> None:
    ids = [str(new_restore_job(wctx)) for _ in range(3)]
    claim = wctx.jobs.claim
    calls = 0

    def claim_then_time_out(job_id, max_attempts):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise SoftTimeLimitExceeded()
        return claim(job_id, max_attempts)

    wctx.jobs.claim = claim_then_time_out  # type: ignore[method-assign]
    requeued: list[list[str]] = []
    assert execute_many(wctx, ids, restore_body, requeued.append) == {"succeeded": 1}
    assert requeued == [ids[1:]]


def test_a_failed_storing_fails_only_its_job(
    wctx: WorkerContext, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [new_restore_job(wctx) for _ in range(3)]
    broken = wctx.storage.job_dir(ids[1])
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fails under the second job's result files only
        if any(p.name.startswith(".tmp-") for p in broken.iterdir()):
            raise OSError("disk full")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    counts = execute_many(wctx, [str(i) for i in ids], restore_body, lambda rest: None)
    assert counts == {"succeeded": 2, "failed": 1}
    failed = wctx.jobs.get(ids[1]) or {}
    assert failed["state"] == "failed" and failed["error_code"] == "internal_error"
    assert "disk full" not in failed["error_message"]  # no internals in the readable error
    assert sorted(p.name for p in broken.iterdir()) == ["input.png"]  # no half-written leftovers
    for job_id in (ids[0], ids[2]):
        job = wctx.jobs.get(job_id) or {}
        assert job["state"] == "succeeded"
        assert wctx.storage.job_file(job_id, "report.json").is_file()
