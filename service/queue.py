"""Sending work to the workers by task *name* (the API never imports worker code or torch)."""

from __future__ import annotations

import logging
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

    def revoke(self, job_id: UUID) -> None: ...

    def ping_workers(self, timeout: float) -> int: ...


class CeleryQueue:
    """A producer-only Celery app with the workers' configuration."""

    def __init__(self, settings: Settings) -> None:
        self.app = Celery("sagd-api")
        self.app.conf.update(celery_config(settings))

    def send(self, task_name: str, job_id: UUID) -> None:
        queue = TASK_ROUTES.get(task_name, {}).get("queue")
        try:
            self.app.send_task(
                task_name,
                args=[str(job_id)],
                task_id=str(job_id),
                queue=queue,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
            )
        except Exception as exc:  # kombu raises OperationalError and friends
            logger.error("could not enqueue %s for job %s: %s", task_name, job_id, exc)
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
