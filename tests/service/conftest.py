"""An app wired to the session's real Redis and a fake queue (no workers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings
from tests.service.api_helpers import FakeQueue, make_settings


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(tmp_path, redis_url)


@pytest.fixture
def client(settings: Settings, queue: FakeQueue) -> Iterator[TestClient]:
    app = create_app(settings, queue=queue)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
