"""Sending work to the workers by task *name* (the API never imports worker code or torch)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from celery import Celery

from service.celery_config import TASK_ROUTES, celery_config
from service.settings import Settings

logger = logging.getLogger(__name__)


class QueueUnavailable(RuntimeError):
    """The broker could not take the task."""


class TaskQueue(Protocol):
    def send(self, task_name: str, job_id: UUID) -> None: ...

    def send_many(self, task_name: str, job_ids: Sequence[UUID]) -> None: ...

    def revoke(self, job_id: UUID) -> None: ...

    def ping_workers(self, timeout: float) -> int: ...


class CeleryQueue:
    """A producer-only Celery app with the workers' configuration."""

    def __init__(self, settings: Settings) -> None:
        self.app = Celery("sagd-api")
        self.app.conf.update(celery_config(settings))

    def send(self, task_name: str, job_id: UUID) -> None:
        """One job per task; the task id is the job id (so a cancel can revoke it)."""
        self._send(task_name, [str(job_id)], str(job_id))

    def send_many(self, task_name: str, job_ids: Sequence[UUID]) -> None:
        """Several jobs in one task (a chunk of a batch), under a fresh task id: revoking one
        job must not drop the others (a cancelled job is skipped by its state instead)."""
        self._send(task_name, [[str(j) for j in job_ids]], None)

    def _send(self, task_name: str, args: list[object], task_id: str | None) -> None:
        queue = TASK_ROUTES.get(task_name, {}).get("queue")
        try:
            self.app.send_task(
                task_name,
                args=args,
                task_id=task_id,
                queue=queue,
                ignore_result=True,  # job state lives in our own Redis hashes
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
            )
        except Exception as exc:  # kombu raises OperationalError and friends
            logger.error("could not enqueue %s%s: %s", task_name, args, exc)
            raise QueueUnavailable("the job queue is unavailable") from exc

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
