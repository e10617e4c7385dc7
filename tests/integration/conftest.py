"""The whole stack for end-to-end tests: a real Redis, a real Celery worker, the real API.

One stack per session (starting a worker imports torch: seconds). The API runs in-process
(``TestClient``) with its real Celery producer, so tasks cross the real broker to the worker.
The worker runs with small restore time limits (soft 4 s, hard 8 s) so the time-limit test is
quick, and with ``SAGD_TEST_SLOW_FILE``: tests write a number N into that file to make the next
restorations run N extra 50 ms steps (see ``worker/engine.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings
from tests.conftest import RedisServer, WorkerProcess, start_redis, start_worker, worker_env

SOFT_LIMIT_S = 4


@dataclass
class Stack:
    redis: RedisServer
    worker: WorkerProcess
    client: TestClient
    storage: Path
    slow_file: Path
    env: dict[str, str]

    def slow(self, steps: int) -> None:
        if steps:
            self.slow_file.write_text(str(steps))
        else:
            self.slow_file.unlink(missing_ok=True)

    def wait_job(
        self, job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.client.get(f"/v1/jobs/{job_id}").json()
            if until(body):
                return body
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} stuck at {body}\nworker log:\n{self.worker.tail()}")

    def wait_done(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        terminal = ("succeeded", "failed", "cancelled")
        return self.wait_job(job_id, lambda b: b.get("state") in terminal, timeout)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    redis = start_redis(base / "redis")
    storage = base / "storage"
    slow_file = base / "slow-steps"
    env = worker_env(
        redis.url,
        storage,
        SAGD_TEST_SLOW_FILE=str(slow_file),
        SAGD_TEST_STEP_S="0.05",
        SAGD_WEBHOOK_ALLOW_PRIVATE="true",
        SAGD_RESTORE_SOFT_TIME_LIMIT_S=str(SOFT_LIMIT_S),
        SAGD_RESTORE_TIME_LIMIT_S=str(2 * SOFT_LIMIT_S),
    )
    worker = start_worker(env, base / "worker.log")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        storage_root=storage,
        redis_url=redis.url,
        webhook_allow_private=True,
        analyze_wait_s=10,
    )
    try:
        with TestClient(create_app(settings)) as client:
            yield Stack(redis, worker, client, storage, slow_file, env)
    finally:
        worker.stop()
        redis.stop()
