"""What the API routes share: settings, Redis, stores, the queue (built once per app)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from redis import Redis

from service.api.auth import RateLimiter
from service.jobs.jobstore import JobStore, connect
from service.jobs.queue import CeleryQueue, TaskQueue
from service.jobs.registry import CorruptionTypes, ModelRegistry
from service.jobs.storage import Storage
from service.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    redis: Redis
    jobs: JobStore
    storage: Storage
    models: ModelRegistry
    corruption_types: CorruptionTypes
    queue: TaskQueue
    limiter: RateLimiter
    # Admission for the CPU-bound part of accepting an upload (decode, store, queue): a few at a
    # time, in arrival order, instead of every request thread sharing the GIL at once, so under a
    # burst the first uploads are answered first rather than all of them near the end.
    admission: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(2)
    )

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        queue: TaskQueue | None = None,
        client: Redis | None = None,
    ) -> AppContext:
        client = client or connect(settings.redis_url, retries=3)
        storage = Storage(settings.storage_path)
        return cls(
            settings=settings,
            redis=client,
            jobs=JobStore(client, ttl_s=settings.result_ttl_s),
            storage=storage,
            models=ModelRegistry(storage),
            corruption_types=CorruptionTypes(storage),
            queue=queue or CeleryQueue(settings),
            limiter=RateLimiter(client, settings.rate_limit_per_s, settings.rate_limit_burst),
            admission=threading.BoundedSemaphore(settings.accept_concurrency),
        )
