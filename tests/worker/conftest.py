"""A worker context on the session's Redis with a fake engine (no torch, no sagd_core)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings
from tests.worker.worker_helpers import FakeEngine
from worker.context import WorkerContext


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def notified() -> list[str]:
    return []


@pytest.fixture
def wctx(tmp_path: Path, redis_url: str, engine: FakeEngine, notified: list[str]) -> WorkerContext:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, storage_root=tmp_path / "storage", redis_url=redis_url, max_attempts=2
    )
    return WorkerContext.build(settings, engine=engine, notify=notified.append)
