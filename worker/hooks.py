"""Side jobs of the workers: webhook delivery and the result-expiry sweep."""

from __future__ import annotations

import logging
from uuid import UUID

from service.jobs.views import job_public
from service.jobs.webhooks import deliver
from worker.context import WorkerContext

logger = logging.getLogger(__name__)


def deliver_job_webhook(ctx: WorkerContext, job_id: str) -> int | None:
    """POST the job's public JSON to its callback URL (signed); None if there is nothing to send.

    Raises ``WebhookTargetError`` when the target is refused (not retried) and ``httpx``
    errors when the receiver fails (retried with backoff by the task).
    """
    job = ctx.jobs.get(UUID(job_id))
    if job is None or not job.get("callback_url"):
        return None
    body = job_public(job).model_dump_json().encode()
    status = deliver(
        job["callback_url"],
        body,
        secret=ctx.settings.webhook_secret.get_secret_value(),
        allow_private=ctx.settings.webhook_allow_private,
    )
    logger.info("webhook for job %s delivered (%d)", job_id, status)
    return status


def sweep_expired(ctx: WorkerContext) -> int:
    """Delete result folders older than ``SAGD_RESULT_TTL_S`` whose job is no longer active."""
    return ctx.storage.sweep_jobs(ctx.settings.result_ttl_s, ctx.jobs.is_active)
