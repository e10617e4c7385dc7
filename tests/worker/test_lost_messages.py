"""Queued jobs whose task message vanished are sent again (``service.jobs.lost_messages``), on
the session's real Redis with the broker's real message format."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

from service.jobs.contracts import QUEUES, TASK_RESTORE, TASK_RESTORE_MANY
from service.jobs.lost_messages import QUEUED, UNACKED, LostMessages, job_ids_in
from service.jobs.queue import CeleryQueue, TaskMessage
from worker.context import WorkerContext


def _queued_job(ctx: WorkerContext, queue: CeleryQueue) -> tuple[UUID, TaskMessage]:
    job_id = uuid4()
    task = queue.message(TASK_RESTORE, job_id)
    ctx.jobs.create(job_id, kind="restore", owner="o", params={}, task=task)
    return job_id, task


def _watch(ctx: WorkerContext) -> LostMessages:
    return LostMessages(ctx.jobs.r, ctx.jobs.key, QUEUES, grace_s=0.0)


def test_the_ids_a_task_message_carries(wctx: WorkerContext) -> None:
    queue = CeleryQueue(wctx.settings)
    one, many = uuid4(), [uuid4(), uuid4()]
    assert job_ids_in(queue.message(TASK_RESTORE, one).body) == [str(one)]
    chunk = queue.message_many(TASK_RESTORE_MANY, many).body
    assert job_ids_in(chunk) == [str(j) for j in many]
    assert job_ids_in(json.dumps([json.loads(chunk), "", "restore"])) == [str(j) for j in many]
    assert job_ids_in("not a message") == [] and job_ids_in('{"body": "!!"}') == []


def test_a_lost_message_is_sent_again_after_two_looks_and_only_then(wctx: WorkerContext) -> None:
    queue = CeleryQueue(wctx.settings)
    kept, _ = _queued_job(wctx, queue)
    lost, lost_task = _queued_job(wctx, queue)
    r = wctx.jobs.r
    assert r.lrem(lost_task.key, 0, lost_task.body) == 1  # popped, never recorded as unacked
    watch = _watch(wctx)
    sent: list[str] = []

    def message_for(kind: str, job_id: str) -> TaskMessage:
        sent.append(job_id)
        return queue.message(TASK_RESTORE, UUID(job_id))

    assert watch.check(message_for) == []  # one look is not enough: a pop is in flight for a moment
    assert watch.check(message_for) == [str(lost)]
    assert sent == [str(lost)]
    carried = [job_ids_in(m) for m in r.lrange(lost_task.key, 0, -1)]
    assert sorted(ids[0] for ids in carried) == sorted([str(kept), str(lost)])
    assert watch.check(message_for) == []  # carried again: not sent twice
    assert r.zscore(QUEUED, str(lost)) is not None


def test_claimed_and_unacknowledged_jobs_are_left_alone(wctx: WorkerContext) -> None:
    queue = CeleryQueue(wctx.settings)
    claimed, claimed_task = _queued_job(wctx, queue)
    _, delivered_task = _queued_job(wctx, queue)
    r = wctx.jobs.r
    r.lrem(claimed_task.key, 0, claimed_task.body)
    assert wctx.jobs.claim(claimed, 3).outcome == "run"  # the claim takes it off the queued set
    assert r.zscore(QUEUED, str(claimed)) is None
    r.lrem(delivered_task.key, 0, delivered_task.body)  # delivered to a worker, not yet acked
    r.hset(UNACKED, "tag", json.dumps([json.loads(delivered_task.body), "", "restore"]))
    watch = _watch(wctx)
    message_for = lambda kind, job_id: queue.message(TASK_RESTORE, UUID(job_id))  # noqa: E731
    assert watch.check(message_for) == [] and watch.check(message_for) == []
    assert r.llen(claimed_task.key) == 0


def test_jobs_no_longer_queued_leave_the_queued_set(wctx: WorkerContext) -> None:
    queue = CeleryQueue(wctx.settings)
    job_id, _ = _queued_job(wctx, queue)
    assert wctx.jobs.request_cancel(job_id) == "cancelled"  # a queued job: at once
    assert wctx.jobs.get(job_id)["state"] == "cancelled"  # type: ignore[index]
    assert _watch(wctx).suspects() == {}
    assert wctx.jobs.r.zscore(QUEUED, str(job_id)) is None
