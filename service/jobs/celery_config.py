"""Celery configuration shared by the API (which only sends tasks by name) and the workers.

Reliability choices (RELIABILITY.md): late acks with reject-on-worker-lost so a killed worker's job
is redelivered (attempts are capped per job in Redis, ``service/jobs/jobstore.py``); prefetch 1
so a long job never holds others hostage; the Redis visibility timeout is set explicitly and the
workers' hard time limits are validated to stay below it (``service/settings.py``), or a long job
would be delivered twice. The workers retry a lost broker connection without end (Celery's
default gives up after 100 tries, about an hour), so a Redis restart never needs a worker restart;
a job running meanwhile keeps its lease or is requeued by the reaper (``worker/hooks.py``).
"""

from __future__ import annotations

from typing import Any

from service.jobs.contracts import QUEUE_RESTORE, TASK_QUEUES, TASK_SWEEP
from service.settings import Settings

PROC_ALIVE_TIMEOUT_S = 120.0

TASK_ROUTES: dict[str, dict[str, str]] = {
    task: {"queue": queue} for task, queue in TASK_QUEUES.items()
}


def celery_config(settings: Settings) -> dict[str, Any]:
    """The ``app.conf`` mapping for both sides of the queue."""
    transport = {"visibility_timeout": settings.visibility_timeout_s}
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "result_expires": settings.result_ttl_s,
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,  # never give up on a Redis that comes back
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A new pool process reports "up" only after ``worker_process_init`` (which imports torch
        # and warms the engine up); Celery's default 4 s is too short on a loaded machine and
        # makes the pool kill and re-fork its process in a loop after a crash or a hard limit.
        "worker_proc_alive_timeout": PROC_ALIVE_TIMEOUT_S,
        "task_default_queue": QUEUE_RESTORE,
        "task_routes": TASK_ROUTES,
        "task_track_started": False,
        # Job state, results and errors live in our own Redis hashes (service/jobs/jobstore.py);
        # Celery's result records would only cost a write per task and memory until they expire.
        "task_ignore_result": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "beat_schedule": {
            "sweep-expired-results": {"task": TASK_SWEEP, "schedule": 3600.0},
        },
        "timezone": "UTC",
    }
