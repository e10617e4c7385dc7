"""Fixtures of the reliability tests.

* ``api``: the real app in-process (``TestClient``) on the session's real Redis, with a fake queue
  (no workers) and rate limits out of the way. Server errors come back as 500 responses, never as
  exceptions in the test, so "no 5xx" is what the tests see.
* ``stack``: real processes (``tools.start_stack``): Redis with AOF, one Celery worker with short
  restore time limits (soft 3 s, hard 6 s), the API under uvicorn. One per session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings
from tests.conftest import RedisServer
from tests.reliability.tools import LocalStack, start_stack
from tests.service.api_helpers import FakeQueue, make_settings


@dataclass
class Api:
    client: TestClient
    settings: Settings
    queue: FakeQueue
    sandbox: Path  # the storage root is sandbox/storage; nothing may appear elsewhere in it

    @property
    def storage(self) -> Path:
        return self.settings.storage_path


def make_api(sandbox: Path, redis_url: str, **overrides: object) -> Api:
    values: dict[str, object] = {"rate_limit_per_s": 1e6, "rate_limit_burst": 1_000_000}
    values.update(overrides)
    settings = make_settings(sandbox, redis_url, **values)
    queue = FakeQueue()
    client = TestClient(create_app(settings, queue=queue), raise_server_exceptions=False)
    return Api(client, settings, queue, sandbox)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Api]:
    made = make_api(tmp_path_factory.mktemp("api"), redis_server.url)
    with made.client:
        yield made


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    started = start_stack(tmp_path_factory.mktemp("reliability-stack"))
    try:
        yield started
    finally:
        started.close()
