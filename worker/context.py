"""Per-process worker state: stores, the engine, the models cache, the device.

Built lazily in each worker *child* (``worker_process_init`` resets it after fork). The device is
chosen on first use, never in the Celery parent, so CUDA is initialised only after fork.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from service.jobs.jobstore import JobStore, connect
from service.jobs.registry import ModelRegistry
from service.jobs.storage import Storage
from service.settings import Settings, get_settings
from worker.engine import CoreEngine, Engine
from worker.models_cache import ModelsCache

logger = logging.getLogger(__name__)

Notify = Callable[[str], None]
# The library logs one INFO line per restored image. A worker records every job in Redis (state,
# timings, report) and runs batches of hundreds of small images, where formatting and writing that
# line was ~7 % of a 256² notch item's time (py-spy on benchmarks/bench_service.py's batch): the
# worker keeps it only when it logs at DEBUG.
PER_IMAGE_LOGGER = "sagd_core.restore.engine"


def quiet_per_image_log() -> None:
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger(PER_IMAGE_LOGGER).setLevel(logging.WARNING)


def _no_notify(job_id: str) -> None:
    return None


@dataclass
class WorkerContext:
    settings: Settings
    jobs: JobStore
    storage: Storage
    registry: ModelRegistry
    engine: Engine
    notify: Notify = _no_notify  # queues the webhook of a finished job that has a callback_url
    _device: str | None = None
    _cache: ModelsCache | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        notify: Notify | None = None,
    ) -> WorkerContext:
        settings = settings or get_settings()
        quiet_per_image_log()
        client = connect(settings.redis_url)
        storage = Storage(settings.storage_path)
        return cls(
            settings=settings,
            jobs=JobStore(client, ttl_s=settings.result_ttl_s),
            storage=storage,
            registry=ModelRegistry(storage),
            engine=engine or CoreEngine(),
            notify=notify or _no_notify,
        )

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = self.engine.select_device(self.settings.device)
            logger.info("worker device: %s", self._device)
        return self._device

    @property
    def cache(self) -> ModelsCache:
        if self._cache is None:
            self._cache = ModelsCache(
                self.registry, self.engine.load_model, self.device, self.settings.models_cache_size
            )
        return self._cache


_current: WorkerContext | None = None
_factory: Callable[[], WorkerContext] = WorkerContext.build


def set_factory(factory: Callable[[], WorkerContext]) -> None:
    """How :func:`get_context` builds the context (the Celery app adds webhook queueing)."""
    global _factory
    _factory = factory


def get_context() -> WorkerContext:
    """This process's context (built on first use)."""
    global _current
    if _current is None:
        _current = _factory()
    return _current


def set_context(ctx: WorkerContext | None) -> None:
    """Replace (or with None, drop) this process's context: after fork, and in tests."""
    global _current
    _current = ctx
