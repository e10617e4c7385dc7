"""No job stuck: leases, the reaper, retried final writes and the start-up reconciliation.

On the session's real Redis with a fake engine; the processes (a SIGKILLed worker, a SIGKILLed
Redis) are in ``tests/integration/test_no_job_stuck.py``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis

from service.jobs.jobstore import JobStore
from service.jobs.leases import LEASES, REQUEUED_MESSAGE
from service.jobs.queue import TaskMessage
from service.jobs.reconcile import reconcile
from tests.harness import wait_until
from tests.worker.worker_helpers import FakeEngine, new_restore_job
from worker.context import LeaseKeeper, WorkerContext
from worker.jobs import execute, restore_body, until_redis_answers

QUEUE = "sagd:test:requeued"


def _message(kind: str, job_id: str) -> TaskMessage:
    return TaskMessage(QUEUE, json.dumps({"kind": kind, "id": job_id}))


def _expire(jobs: JobStore, job_id: UUID) -> None:
    """As if the lease's holder stopped renewing it long ago."""
    jobs.r.hset(jobs.key(job_id), "lease_until", "1")
    jobs.r.zadd(LEASES, {str(job_id): 1})


def _lease(jobs: JobStore, job_id: UUID) -> tuple[float, float | None]:
    until = float(jobs.r.hget(jobs.key(job_id), "lease_until") or 0)
    return until, jobs.r.zscore(LEASES, str(job_id))


def test_a_claim_takes_a_lease_and_the_final_state_drops_it(wctx: WorkerContext) -> None:
    job_id = new_restore_job(wctx)
    before = float(wctx.jobs.r.time()[0])
    assert wctx.jobs.claim(job_id, 3).outcome == "run"
    until, score = _lease(wctx.jobs, job_id)
    assert score is not None and abs(until - score) < 0.01
    assert until >= before + wctx.jobs.lease_s - 1
    assert wctx.jobs.get(job_id)["worker"] == wctx.jobs.holder  # type: ignore[index]
    assert wctx.jobs.expired() == []
    assert wctx.jobs.finish(job_id, "succeeded", result={})
    assert _lease(wctx.jobs, job_id)[1] is None
    assert wctx.jobs.renew([job_id]) == [False]  # a final job is not leased again


def test_the_reaper_requeues_a_job_whose_lease_ran_out_once(wctx: WorkerContext) -> None:
    job_id = new_restore_job(wctx)
    wctx.jobs.claim(job_id, 3)
    assert wctx.jobs.reap(_message)["live"] == 0 and wctx.jobs.expired() == []  # leased
    _expire(wctx.jobs, job_id)
    assert wctx.jobs.reap(_message) == {"requeued": 1}
    assert wctx.jobs.reap(_message) == {}  # another reaper: nothing left to do
    job = wctx.jobs.get(job_id) or {}
    assert job["state"] == "queued" and job["message"] == REQUEUED_MESSAGE
    assert "lease_until" not in job
    queued = [json.loads(m) for m in wctx.jobs.r.lrange(QUEUE, 0, -1)]
    assert queued == [{"kind": "restore", "id": str(job_id)}]


def test_a_renewed_lease_wins_over_the_reaper(wctx: WorkerContext) -> None:
    job_id = new_restore_job(wctx)
    wctx.jobs.claim(job_id, 3)
    wctx.jobs.r.zadd(LEASES, {str(job_id): 1})  # listed as run out, but the record was renewed
    assert wctx.jobs.reap(_message) == {"live": 1}
    assert wctx.jobs.get(job_id)["state"] == "running"  # type: ignore[index]
    assert _lease(wctx.jobs, job_id)[1] == _lease(wctx.jobs, job_id)[0]  # listed right again
    assert wctx.jobs.r.llen(QUEUE) == 0


def test_a_lost_job_that_was_being_cancelled_ends_cancelled(wctx: WorkerContext) -> None:
    job_id = new_restore_job(wctx)
    wctx.jobs.claim(job_id, 3)
    assert wctx.jobs.request_cancel(job_id) == "cancelling"
    _expire(wctx.jobs, job_id)
    assert wctx.jobs.reap(_message) == {"cancelled": 1}
    assert (wctx.jobs.get(job_id) or {})["state"] == "cancelled"
    assert wctx.jobs.r.llen(QUEUE) == 0


def test_a_requeued_job_runs_again_and_fails_with_a_reason_when_out_of_attempts(
    wctx: WorkerContext, engine: FakeEngine
) -> None:
    job_id = new_restore_job(wctx)  # max_attempts=2 in this context
    for _ in range(2):  # two workers lost mid-job, each found by the reaper
        assert wctx.jobs.claim(job_id, 2).outcome == "run"
        _expire(wctx.jobs, job_id)
        assert wctx.jobs.reap(_message) == {"requeued": 1}
    assert execute(wctx, str(job_id), restore_body) == "failed"
    job = wctx.jobs.get(job_id) or {}
    assert job["error_code"] == "worker_lost" and "2 attempts" in job["error_message"]
    assert engine.restores == []


def test_the_lease_keeper_renews_what_it_holds(wctx: WorkerContext) -> None:
    jobs = JobStore(wctx.jobs.r, lease_s=1.0)
    job_id = new_restore_job(wctx)
    jobs.claim(job_id, 3)
    first = _lease(jobs, job_id)[0]
    keeper = LeaseKeeper(jobs)
    keeper.hold(str(job_id))
    wait_until(lambda: _lease(jobs, job_id)[0] > first, what="lease renewed", timeout_s=20)
    keeper.release(str(job_id))
    assert keeper.held() == []


def test_a_job_whose_progress_reports_fail_still_succeeds_once(
    wctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis unreachable at a progress report and at the first try of the final write: the work
    goes on and the result is stored when Redis answers again."""
    job_id = new_restore_job(wctx)
    finish = wctx.jobs.finish_counted
    failures = {"progress": 0, "finish": 0}

    def progress(*args: Any, **kwargs: Any) -> bool:
        failures["progress"] += 1
        raise redis.ConnectionError("Redis is restarting")

    def finish_after_an_outage(*args: Any, **kwargs: Any) -> str | None:
        if failures["finish"] == 0:
            failures["finish"] += 1
            raise redis.ConnectionError("Redis is restarting")
        return finish(*args, **kwargs)

    monkeypatch.setattr(wctx.jobs, "progress", progress)
    monkeypatch.setattr(wctx.jobs, "finish_counted", finish_after_an_outage)
    assert execute(wctx, str(job_id), restore_body) == "succeeded"
    assert failures == {"progress": 1, "finish": 1}  # later reports paused, not retried each step
    job = wctx.jobs.get(job_id) or {}
    assert job["state"] == "succeeded" and json.loads(job["result"])
    assert _lease(wctx.jobs, job_id)[1] is None
    assert wctx.leases.held() == []


def test_the_final_write_is_given_up_after_its_retry_time(wctx: WorkerContext) -> None:
    ctx = WorkerContext(
        settings=wctx.settings.model_copy(update={"final_write_retry_s": 0.0}),
        jobs=wctx.jobs,
        storage=wctx.storage,
        registry=wctx.registry,
        engine=wctx.engine,
    )
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise redis.ConnectionError("down")

    with pytest.raises(redis.ConnectionError):
        until_redis_answers(ctx, "test", down)
    assert calls == [1]
    answers = iter([redis.TimeoutError("slow"), "ok"])

    def flaky() -> str:
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    assert until_redis_answers(wctx, "test", flaky) == "ok"


def test_reconciliation_counts_orphans_and_leases_running_records_without_one(
    wctx: WorkerContext,
) -> None:
    jobs = wctx.jobs
    jobs.r.delete(LEASES)
    running = new_restore_job(wctx)
    jobs.claim(running, 3)
    jobs.r.zrem(LEASES, str(running))  # as a record from before leases
    queued_without_input = new_restore_job(wctx)
    wctx.storage.delete_job(queued_without_input)
    orphan, recent_orphan = uuid4(), uuid4()
    for folder in (orphan, recent_orphan):
        wctx.storage.job_dir(folder, create=True)
    old = time.time() - 3600
    os.utime(wctx.storage.job_dir(orphan), (old, old))
    found = reconcile(jobs, wctx.storage.job_folders(), grace_s=600)
    assert found.folders_without_record == 1  # the recent one may be a job being created
    assert found.waiting_without_folder == 1
    assert (found.running, found.running_without_lease, found.running_lease_expired) == (1, 1, 0)
    assert jobs.r.zscore(LEASES, str(running)) is not None  # the reaper now sees it
    assert "1 folders without a record" in found.summary(3600)


def test_the_workers_reaper_requeues_each_kind_on_its_own_task_and_queue(
    wctx: WorkerContext,
) -> None:
    """``worker.hooks.Reaper`` builds the task of the job's kind, as the API would queue it."""
    from worker.hooks import Reaper

    restore_job = new_restore_job(wctx)
    train_job = uuid4()
    wctx.jobs.create(train_job, kind="train", owner="o", params={})
    for job_id in (restore_job, train_job):
        wctx.jobs.claim(job_id, 3)
        _expire(wctx.jobs, job_id)
    assert Reaper(wctx.settings, wctx.jobs).reap_once() == 2
    for queue, task, job_id in (
        ("restore", "sagd.restore", restore_job),
        ("train", "sagd.train", train_job),
    ):
        (raw,) = wctx.jobs.r.lrange(queue, 0, -1)
        envelope = json.loads(raw)
        assert envelope["headers"]["task"] == task and envelope["headers"]["id"] == str(job_id)
