"""Per-process worker state: stores, the engine, the models cache, the device, the job leases.

Built lazily in each worker *child* (``worker_process_init`` resets it after fork). The device is
chosen on first use, never in the Celery parent, so CUDA is initialised only after fork. The
:class:`LeaseKeeper` renews the leases of the jobs the process runs from a thread of its own, so
a long step does not let a lease run out, and a process that dies stops renewing them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

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


ASYNC_SIGNALS = {
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGALRM,
    signal.SIGCHLD,
}


class LeaseKeeper:
    """Renews the leases of the jobs this process holds, every quarter of a lease, on a daemon
    thread started at the first :meth:`hold` (so after fork). A renewal that fails (Redis
    unreachable) is logged and tried again at the next beat; the lease outlives three of them."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self.every_s = max(0.25, jobs.lease_s / 4)
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the renewing thread unless it runs (the pool process does at start, so that its
        first job does not wait for a thread to start)."""
        with self._lock:
            self._start_locked()

    def hold(self, job_id: str) -> None:
        with self._lock:
            self._held.add(job_id)
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._beat, name="sagd-lease", daemon=True)
            self._thread.start()

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.discard(job_id)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def _beat(self) -> None:
        # Process signals (the soft time limit's SIGUSR1, a shutdown's SIGTERM) go to the thread
        # that runs the job, as they did before this thread existed: a job stuck in native code
        # then still holds them off until it returns to Python.
        signal.pthread_sigmask(signal.SIG_BLOCK, ASYNC_SIGNALS)
        pause = threading.Event()
        while not pause.wait(self.every_s):
            held = self.held()
            if not held:
                continue
            try:
                self.jobs.renew(held)
            except redis.RedisError as exc:
                logger.warning("could not renew the leases of %d jobs: %s", len(held), exc)


def holder_name() -> str:
    """Who holds a lease, as the job record shows it: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
    _leases: LeaseKeeper | None = field(default=None, repr=False)

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
            jobs=JobStore(
                client,
                ttl_s=settings.result_ttl_s,
                lease_s=settings.job_lease_s,
                holder=holder_name(),
            ),
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
    def leases(self) -> LeaseKeeper:
        if self._leases is None:
            self._leases = LeaseKeeper(self.jobs)
        return self._leases

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
