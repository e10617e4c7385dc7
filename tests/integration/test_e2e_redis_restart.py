"""Redis restarts under a running worker: queued jobs survive (AOF) and the worker resumes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings
from tests.conftest import start_redis, start_worker, worker_env
from tests.service.api_helpers import png_bytes, restore_form

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_jobs_queued_before_a_redis_restart_complete(tmp_path: Path) -> None:
    redis = start_redis(tmp_path / "redis", appendonly=True)
    storage = tmp_path / "storage"
    env = worker_env(redis.url, storage, SAGD_TEST_SLOW_STEPS="8", SAGD_TEST_STEP_S="0.05")
    worker = start_worker(env, tmp_path / "worker.log", name="restart")
    settings = Settings(_env_file=None, storage_root=storage, redis_url=redis.url)  # type: ignore[call-arg]
    try:
        with TestClient(create_app(settings)) as client:
            ids = []
            for i in range(6):
                response = client.post(
                    "/v1/restorations",
                    files={"image": ("x.png", png_bytes(32, 32, seed=i), "image/png")},
                    data=restore_form(),
                )
                assert response.status_code == 202
                ids.append(response.json()["id"])
            redis.stop()  # SIGTERM: Redis writes its AOF and exits
            time.sleep(1.0)
            redis = start_redis(redis.directory, appendonly=True, port=redis.port)
            deadline = time.monotonic() + 90
            states: dict[str, str] = {}
            while time.monotonic() < deadline:
                states = {j: client.get(f"/v1/jobs/{j}").json()["state"] for j in ids}
                if all(s in ("succeeded", "failed", "cancelled") for s in states.values()):
                    break
                time.sleep(0.2)
            assert set(states.values()) == {"succeeded"}, (states, worker.tail())
            assert worker.process.poll() is None  # the same worker, never restarted
    finally:
        worker.stop()
        redis.stop()
