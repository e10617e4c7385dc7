"""Models loaded once per worker process, after fork, and reloaded when the registry changes.

CUDA cannot be initialised in a forked child after the parent touched it (RELIABILITY.md), so
nothing is loaded in the Celery parent: the cache is created empty in ``worker_process_init`` and
fills lazily on the first job that needs a model. Every job resolves ``(name, version)`` against
the registry file (re-read only when its mtime/size changed), so a new default version trained by
another worker reaches this one on its next job, without a restart. A small LRU bounds memory.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.jobs.registry import ModelRegistry

logger = logging.getLogger(__name__)

Loader = Callable[[Path, str], Any]


class ModelsCache:
    def __init__(self, registry: ModelRegistry, loader: Loader, device: str, capacity: int = 4):
        self.registry = registry
        self.loader = loader
        self.device = device
        self.capacity = capacity
        self._models: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._revision: tuple[int, int] | None = None
        self._defaults: dict[str, int] = {}
        self._lock = threading.Lock()
        self.loads = 0  # how many checkpoints this process has read (for tests and logs)

    def _refresh(self) -> None:
        revision = self.registry.revision()
        if revision == self._revision:
            return
        data = self.registry.load()
        self._defaults = {
            name: int(entry["default_version"]) for name, entry in data["models"].items()
        }
        known = {
            (name, int(v)) for name, entry in data["models"].items() for v in entry["versions"]
        }
        for key in [k for k in self._models if k not in known]:
            logger.info("model %s v%d left the registry; dropping it", *key)
            del self._models[key]
        if self._revision is not None:
            logger.info("model registry changed; defaults now %s", self._defaults)
        self._revision = revision

    def resolve(self, name: str, version: int | None = None) -> int:
        """The version a job for ``name`` should use (the current default if None)."""
        with self._lock:
            self._refresh()
            if version is not None:
                return version
            if name not in self._defaults:
                # resolve() raises ModelNotFoundError with a readable message
                return self.registry.resolve(name, None)[0]
            return self._defaults[name]

    def get(self, name: str, version: int | None = None) -> tuple[int, Any]:
        """``(version, loaded model)``, loading the checkpoint on first use in this process."""
        chosen = self.resolve(name, version)
        key = (name, chosen)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return chosen, self._models[key]
        _, directory = self.registry.resolve(name, chosen)
        logger.info("loading model %s v%d on %s", name, chosen, self.device)
        model = self.loader(directory, self.device)
        with self._lock:
            self.loads += 1
            self._models[key] = model
            while len(self._models) > self.capacity:
                evicted, _ = self._models.popitem(last=False)
                logger.info("evicting model %s v%d from the cache", *evicted)
        return chosen, model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._revision = None
            self._defaults = {}
