"""Side jobs of the workers: webhook delivery, the result-expiry sweep, and the lease reaper.

The reaper runs in every Celery worker's main process (not in the pool, so a long job never holds
it up): every quarter of ``SAGD_JOB_LEASE_S`` it requeues the running jobs whose lease ran out
(``JobStore.reap``: one atomic script per job, so several workers reaping at once requeue a job
once). Any worker of any queue reaps the jobs of every queue, so a killed training worker's job is
requeued even while that worker is down.
"""

from __future__ import annotations

import logging
import threading
from uuid import UUID

import redis

from service.jobs.contracts import QUEUES, TASK_ANALYZE, TASK_RESTORE, TASK_TRAIN
from service.jobs.jobstore import JobStore
from service.jobs.lost_messages import LostMessages
from service.jobs.queue import CeleryQueue, TaskMessage
from service.jobs.views import job_public
from service.jobs.webhooks import deliver
from service.settings import Settings
from worker.context import WorkerContext

logger = logging.getLogger(__name__)

#: The task that runs a job of each kind (a batch item is requeued as a single restore).
KIND_TASKS = {"restore": TASK_RESTORE, "analyze": TASK_ANALYZE, "train": TASK_TRAIN}


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


class Reaper:
    """Requeues the running jobs whose lease ran out, and sends again the task message of queued
    jobs that lost it (:mod:`service.jobs.lost_messages`), every quarter lease, on a daemon
    thread."""

    def __init__(self, settings: Settings, jobs: JobStore) -> None:
        self.jobs = jobs
        self.lost = LostMessages(jobs.r, jobs.key, QUEUES)
        self.every_s = max(0.25, settings.job_lease_s / 4)
        self.queue = CeleryQueue(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sagd-reaper", daemon=True)

    def message_for(self, kind: str, job_id: str) -> TaskMessage:
        return self.queue.message(KIND_TASKS.get(kind, TASK_RESTORE), UUID(job_id))

    def reap_once(self) -> int:
        """One pass; how many jobs were requeued or ended cancelled (each logged)."""
        counts = self.jobs.reap(self.message_for)
        self.lost.check(self.message_for)
        acted = counts["requeued"] + counts["cancelled"]
        if acted:
            logger.warning(
                "reaper: %d running jobs had lost their worker (lease of %.0f s run out): "
                "%d requeued, %d cancelled as asked",
                acted,
                self.jobs.lease_s,
                counts["requeued"],
                counts["cancelled"],
            )
        return acted

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.reap_once()
            except redis.RedisError as exc:  # Redis away: try again at the next beat
                logger.warning("reaper: %s", exc)
            except Exception:  # a bug must not stop the reaping for good
                logger.exception("reaper pass failed")
