"""The Celery application of the workers: ``celery -A worker.celery_app worker -Q restore,train``.

Configuration is shared with the API (``service/jobs/celery_config.py``): Redis broker and result
backend, late acks with reject-on-worker-lost, prefetch 1, an explicit visibility timeout above
every hard time limit. Models are loaded after fork: ``worker_process_init`` drops any context
inherited from the parent, and the device (CUDA or CPU) is chosen in the child on first use.
Run one worker process per GPU (``CUDA_VISIBLE_DEVICES``, ``--concurrency=1``), see docs/DEPLOY.md.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from service.jobs.capabilities import publish
from service.jobs.celery_config import celery_config
from service.jobs.contracts import TASK_WEBHOOK
from service.settings import get_settings
from worker import context
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
    try:
        publish(ctx.jobs.r, ctx.engine.capabilities())
    except Exception as exc:  # capabilities are advisory; never stop a worker for them
        logger.warning("could not publish worker capabilities: %s", exc)
