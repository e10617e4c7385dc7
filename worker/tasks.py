"""Celery tasks: thin wrappers that pass job ids to ``worker.jobs`` (no logic here)."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import httpx
from celery import Task
from celery.exceptions import TimeLimitExceeded

from service.jobs.contracts import (
    TASK_ANALYZE,
    TASK_RESTORE,
    TASK_RESTORE_MANY,
    TASK_SWEEP,
    TASK_TRAIN,
    TASK_WEBHOOK,
)
from service.jobs.webhooks import WebhookTargetError
from service.settings import get_settings
from worker.celery_app import app
from worker.context import get_context
from worker.hooks import deliver_job_webhook, sweep_expired
from worker.jobs import (
    analyze_body,
    execute,
    execute_many,
    finish_job,
    restore_body,
    train_body,
)

logger = logging.getLogger(__name__)
_settings = get_settings()


class JobTask(Task):
    """Marks the job failed when the pool kills it at the hard time limit.

    Celery runs ``on_failure`` in the parent process for a hard timeout; a soft timeout is
    handled inside the task (``worker.jobs.execute``) and never gets here.
    """

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if isinstance(exc, TimeLimitExceeded) and args:
            ctx = get_context()
            limit = exc.args[0] if exc.args else "?"
            message = f"killed at the hard time limit of {limit} s (the job did not stop in time)"
            ids = [str(i) for i in args[0]] if isinstance(args[0], list) else [str(args[0])]
            waiting = []
            for job_id in ids:  # a chunk: the running job failed, the ones not started requeued
                job = ctx.jobs.get(job_id) or {}
                if job.get("state") == "queued":
                    waiting.append(job_id)
                elif job.get("state") == "running":
                    finish_job(
                        ctx, UUID(job_id), "failed", error_code="time_limit", error_message=message
                    )
            if waiting:
                requeue_chunk(waiting)


def requeue_chunk(job_ids: list[str]) -> None:
    app.send_task(TASK_RESTORE_MANY, args=[job_ids])  # a fresh task id: never a job's


def job_task(name: str, *, training: bool = False) -> Any:
    """The Celery task decorator of a job kind: :class:`JobTask` and the kind's time limits."""
    soft, hard = (
        (_settings.train_soft_time_limit_s, _settings.train_time_limit_s)
        if training
        else (_settings.restore_soft_time_limit_s, _settings.restore_time_limit_s)
    )
    return app.task(name=name, base=JobTask, soft_time_limit=soft, time_limit=hard)


@job_task(TASK_RESTORE)
def restore(job_id: str) -> dict[str, str]:
    return {"state": execute(get_context(), job_id, restore_body)}


@job_task(TASK_RESTORE_MANY)
def restore_many(job_ids: list[str]) -> dict[str, int]:
    """A chunk of a batch (see ``worker.jobs.execute_many``)."""
    return execute_many(get_context(), [str(i) for i in job_ids], restore_body, requeue_chunk)


@job_task(TASK_ANALYZE)
def analyze(job_id: str) -> dict[str, str]:
    return {"state": execute(get_context(), job_id, analyze_body)}


@job_task(TASK_TRAIN, training=True)
def train(job_id: str) -> dict[str, str]:
    return {"state": execute(get_context(), job_id, train_body)}


@app.task(name=TASK_WEBHOOK, bind=True, soft_time_limit=60, time_limit=90)
def webhook(self: Task, job_id: str) -> str:
    """Deliver a job's webhook; retried with exponential backoff (1, 2, 4, ... s, at most 5 min)."""
    try:
        deliver_job_webhook(get_context(), job_id)
    except WebhookTargetError as exc:
        logger.warning("webhook for job %s refused: %s", job_id, exc)
        return "refused"
    except httpx.HTTPError as exc:
        retries = int(self.request.retries or 0)
        if retries >= _settings.webhook_max_retries:
            logger.warning("webhook for job %s failed %d times; giving up", job_id, retries + 1)
            return "gave up"
        raise self.retry(exc=exc, countdown=min(2**retries, 300)) from exc
    return "delivered"


@app.task(name=TASK_SWEEP, soft_time_limit=600, time_limit=660)
def sweep() -> int:
    return sweep_expired(get_context())
