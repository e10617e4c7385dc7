"""What the API routes share: settings, Redis, stores, the queue (built once per app)."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from service.auth import RateLimiter
from service.jobstore import JobStore, connect
from service.queue import CeleryQueue, TaskQueue
from service.registry import CorruptionTypes, ModelRegistry
from service.settings import Settings
from service.storage import Storage


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
        )
