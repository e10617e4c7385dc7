"""The Celery application of the workers: ``celery -A worker.celery_app worker -Q restore,train``.

Configuration is shared with the API (``service/jobs/celery_config.py``): Redis broker and result
backend, late acks with reject-on-worker-lost, prefetch 1, an explicit visibility timeout above
every hard time limit. Models are loaded after fork: ``worker_process_init`` drops any context
inherited from the parent, and the device (CUDA or CPU) is chosen in the child on first use.
Run one worker process per GPU (``CUDA_VISIBLE_DEVICES``, ``--concurrency=1``), see docs/DEPLOY.md.
Each worker's main process also runs the lease reaper (``worker.hooks.Reaper``) and, at start,
reports how the job folders and records compare; it rides out a Redis restart (the broker
connection is retried without end, ``service/jobs/celery_config.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from service.jobs.capabilities import publish
from service.jobs.celery_config import celery_config
from service.jobs.contracts import TASK_WEBHOOK
from service.jobs.jobstore import JobStore, connect
from service.jobs.reconcile import report_reconciliation
from service.jobs.storage import Storage
from service.settings import get_settings
from worker import context
from worker.hooks import Reaper
from worker.priority import lower_priority

logger = logging.getLogger(__name__)

app = Celery("sagd", include=["worker.tasks"])
app.conf.update(celery_config(get_settings()))
celery_app = app


def queue_webhook(job_id: str) -> None:
    app.send_task(TASK_WEBHOOK, args=[job_id])


context.set_factory(lambda: context.WorkerContext.build(notify=queue_webhook))


@signals.worker_init.connect
def _before_pool(**_: Any) -> None:
    """Runs in the main worker process before the pool forks (the children inherit it)."""
    lower_priority(get_settings().worker_niceness)


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    """A fresh context per child: nothing (Redis sockets, models, CUDA) shared across fork."""
    context.set_context(None)
    ctx = context.get_context()
    ctx.engine.warm_up(ctx.device)  # picks CUDA or CPU here, in the child, after fork
    ctx.leases.start()  # renews the leases of the jobs this process runs
    try:
        publish(ctx.jobs.r, ctx.engine.capabilities())
    except Exception as exc:  # capabilities are advisory; never stop a worker for them
        logger.warning("could not publish worker capabilities: %s", exc)


_reapers: list[Reaper] = []


@signals.worker_ready.connect
def _start_reaper(**_: Any) -> None:
    """In the main worker process, once it consumes: report the reconciliation (the first worker
    in a minute) and start the lease reaper."""
    settings = get_settings()
    jobs = JobStore(
        connect(settings.redis_url), ttl_s=settings.result_ttl_s, lease_s=settings.job_lease_s
    )
    try:
        folders = Storage(settings.storage_path).job_folders()
        report_reconciliation(jobs, folders, settings.result_ttl_s, once=True)
    except Exception as exc:  # a report; never stop a worker for it
        logger.warning("reconciliation at start failed: %s", exc)
    reaper = Reaper(settings, jobs)
    reaper.start()
    _reapers.append(reaper)


@signals.worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    for reaper in _reapers:
        reaper.stop()
