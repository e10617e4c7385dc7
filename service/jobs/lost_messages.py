"""Queued jobs whose task message is gone: found and sent again, so no job stays ``queued``.

A job is created with its task message in one transaction (``JobStore.create_many``), and its id
enters :data:`QUEUED` (a sorted set scored by when it was queued) until a worker claims it. The
message can still vanish without the job being claimed: kombu's Redis transport pops a message
(``BRPOP``) and records it as unacknowledged (``HSET unacked``) in two steps, so a Redis killed
between the two, with the pop already in its append-only file, loses the message while the job
stays ``queued`` for ever.

:class:`LostMessages` looks at the jobs queued for longer than a grace period, reads the task
messages the broker holds (every queue's list and the unacknowledged hash, in one transaction)
and sends again the message of a job that is in neither on two looks in a row (between the two
steps above a message is in neither for a moment; on the second look such a job is running).
A message sent twice is harmless: the claim runs a job once its state says so, and its final
state is set once.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from service.jobs.queue import TaskMessage

logger = logging.getLogger(__name__)

#: Queued jobs: job ids scored by the time (seconds) they were queued or last sent again.
QUEUED = "sagd:queued"
#: kombu's Redis transport: the hash of messages delivered but not yet acknowledged.
UNACKED = "unacked"
#: How long a job may be queued before its message is looked for (seconds).
DEFAULT_GRACE_S = 30.0


def job_ids_in(envelope_json: str) -> list[str]:
    """The job ids a task message (kombu's envelope of Celery's protocol-2 message) carries:
    one job's id, or a chunk's list of them. Empty for what is not such a message."""
    try:
        envelope = json.loads(envelope_json)
        if isinstance(envelope, list):  # an unacked entry: [envelope, exchange, routing key]
            envelope = envelope[0]
        body = json.loads(base64.b64decode(envelope["body"]))
        first = body[0][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return []
    if isinstance(first, str):
        return [first]
    if isinstance(first, list):
        return [str(item) for item in first]
    return []


class LostMessages:
    """Finds queued jobs without a task message in ``queues`` and sends theirs again with
    ``message_for(kind, job id)``; ``job_key`` names a job's record (``JobStore.key``)."""

    def __init__(
        self,
        client: redis.Redis,
        job_key: Callable[[str], str],
        queues: Iterable[str],
        *,
        grace_s: float = DEFAULT_GRACE_S,
    ) -> None:
        self.r = client
        self.job_key = job_key
        self.queues = tuple(queues)
        self.grace_s = grace_s
        self._missing: set[str] = set()  # ids found without a message on the last look

    def suspects(self, limit: int = 1000) -> dict[str, str]:
        """Job id → kind of the jobs queued for longer than the grace period and still queued;
        ids that are no longer queued leave :data:`QUEUED`."""
        old = self.r.zrangebyscore(QUEUED, "-inf", time.time() - self.grace_s, start=0, num=limit)
        ids = [str(i) for i in old]
        if not ids:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self.job_key(job_id), "state", "kind")
        found: dict[str, str] = {}
        done = []
        for job_id, (state, kind) in zip(ids, pipe.execute(), strict=True):
            if state == "queued":
                found[job_id] = str(kind or "restore")
            else:
                done.append(job_id)
        if done:
            self.r.zrem(QUEUED, *done)
        return found

    def carried(self) -> set[str]:
        """Every job id that a task message in the broker carries (queued or unacknowledged),
        read in one transaction."""
        pipe = self.r.pipeline(transaction=True)
        for queue in self.queues:
            pipe.lrange(queue, 0, -1)
        pipe.hvals(UNACKED)
        ids: set[str] = set()
        for messages in pipe.execute():
            for message in messages:
                ids.update(job_ids_in(message))
        return ids

    def check(self, message_for: Callable[[str, str], TaskMessage]) -> list[str]:
        """One look; sends again (and returns) the jobs without a message on this look and the
        last one."""
        suspects = self.suspects()
        if not suspects:
            self._missing.clear()
            return []
        carried = self.carried()
        missing = {job_id for job_id in suspects if job_id not in carried}
        lost = sorted(missing & self._missing)
        self._missing = missing - set(lost)
        for job_id in lost:
            task = message_for(suspects[job_id], job_id)
            pipe = self.r.pipeline(transaction=True)
            pipe.lpush(task.key, task.body)
            pipe.zadd(QUEUED, {job_id: time.time()})
            pipe.execute()
        if lost:
            logger.warning(
                "%d queued jobs had lost their task message (Redis stopped between a worker's "
                "pop and its record of it): sent again: %s",
                len(lost),
                ", ".join(lost),
            )
        return lost
