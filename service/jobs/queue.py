"""Sending work to the workers by task *name* (the API never imports worker code or torch).

The API does not publish through Celery: it builds Celery's own task message
(:class:`TaskMessage`) and pushes it in the same Redis transaction that creates the jobs
(``JobStore.create``). The broker is the job store's Redis (``SAGD_REDIS_URL``), so a job never
exists without its task nor a task without its job, and accepting an upload costs one round trip
instead of a Celery publish (measured: 0.6–1.1 ms of API CPU and two more round trips).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from celery import Celery
from celery.utils.nodenames import anon_nodename

from service.jobs.celery_config import TASK_ROUTES, celery_config
from service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskMessage:
    """A task in the broker's wire format: ``LPUSH key body`` queues it."""

    key: str
    body: str


class TaskQueue(Protocol):
    def message(self, task_name: str, job_id: UUID) -> TaskMessage: ...

    def message_many(self, task_name: str, job_ids: Sequence[UUID]) -> TaskMessage: ...

    def revoke(self, job_id: UUID) -> None: ...

    def ping_workers(self, timeout: float) -> int: ...


class CeleryQueue:
    """A producer-only Celery app with the workers' configuration."""

    def __init__(self, settings: Settings) -> None:
        self.app = Celery("sagd-api")
        self.app.conf.update(celery_config(settings))
        self._origin = anon_nodename()

    def message(self, task_name: str, job_id: UUID) -> TaskMessage:
        """One job per task; the task id is the job id (so a cancel can revoke it)."""
        return self._message(task_name, [str(job_id)], str(job_id))

    def message_many(self, task_name: str, job_ids: Sequence[UUID]) -> TaskMessage:
        """Several jobs in one task (a chunk of a batch), under a fresh task id: revoking one
        job must not drop the others (a cancelled job is skipped by its state instead)."""
        return self._message(task_name, [[str(j) for j in job_ids]], str(uuid.uuid4()))

    def _message(self, task_name: str, args: list[object], task_id: str) -> TaskMessage:
        """Celery's task message (protocol 2, from ``app.amqp.as_task_v2``) in the envelope that
        kombu's Redis transport pushes for a direct queue: what ``send_task(..., queue=q,
        ignore_result=True)`` writes, apart from the random delivery tag
        (tests/service/test_queue_message.py compares the two on a real Redis)."""
        queue = TASK_ROUTES.get(task_name, {}).get("queue") or self.app.conf.task_default_queue
        headers, properties, body, _ = self.app.amqp.as_task_v2(
            task_id,
            task_name,
            args=args,
            kwargs={},
            ignore_result=True,
            origin=self._origin,
            reply_to=self.app.thread_oid,
        )
        envelope = {
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": 2,  # persistent
                "delivery_info": {"exchange": "", "routing_key": queue},  # the anon exchange
                "priority": 0,  # kombu keeps priority 0 in the list named after the queue
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return TaskMessage(key=queue, body=json.dumps(envelope))

    def revoke(self, job_id: UUID) -> None:
        try:
            self.app.control.revoke(str(job_id))
        except Exception as exc:  # best effort: the worker also checks the job state
            logger.warning("revoke of %s failed: %s", job_id, exc)

    def ping_workers(self, timeout: float) -> int:
        """How many workers answered a ping within ``timeout`` seconds (0 on broker errors)."""
        try:
            replies = self.app.control.ping(timeout=timeout, limit=1)
        except Exception as exc:
            logger.warning("worker ping failed: %s", exc)
            return 0
        return len(replies or [])
