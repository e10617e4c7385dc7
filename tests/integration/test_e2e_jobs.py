"""End to end through a real broker and a real worker: restore, batch, cancel, kill, limits."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from PIL import Image

from service.jobs.capabilities import worker_capabilities
from service.jobs.webhooks import SIGNATURE_HEADER, verify
from service.settings import DEV_WEBHOOK_SECRET
from tests.harness import Stack, free_port, is_terminal, make_zip, png_bytes, restore_form

pytestmark = pytest.mark.integration


def submit(stack: Stack, **form: Any) -> str:
    """A notch restoration of a 48×40 RGB image; its job id."""
    return stack.submit(png_bytes(48, 40), **form)


def test_ready_and_capabilities(e2e_stack: Stack) -> None:
    ready = e2e_stack.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["workers"] >= 1
    caps = worker_capabilities(e2e_stack.redis.client())
    assert "notch" in caps["methods"]


def test_worker_computes_below_the_api_priority(e2e_stack: Stack) -> None:
    # The test process (and so the in-process API) runs at its own niceness; the worker and its
    # pool process lower theirs to SAGD_WORKER_NICENESS (default 10) by themselves.
    pids = [e2e_stack.worker.process.pid, *e2e_stack.worker.children()]
    assert len(pids) >= 2
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {
        max(10, os.getpriority(os.PRIO_PROCESS, 0))
    }


def test_restore_notch(e2e_stack: Stack) -> None:
    job_id = submit(e2e_stack)
    body = e2e_stack.wait_done(job_id)
    assert body["state"] == "succeeded", body
    assert body["progress"]["fraction"] == 1.0 and body["attempts"] == 1
    image = e2e_stack.client.get(f"/v1/jobs/{job_id}/result")
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (48, 40)
    report = e2e_stack.client.get(f"/v1/jobs/{job_id}/result", params={"part": "report"}).json()
    assert report["method"] == "notch"
    assert report["out_of_band_residual"] is not None
    metrics = e2e_stack.client.get("/metrics").text
    assert 'sagd_jobs_total{kind="restore",state="succeeded"}' in metrics


def test_batch_zip(e2e_stack: Stack) -> None:
    images = {f"img{i}.png": png_bytes(32, 32, seed=i) for i in range(5)}
    upload = make_zip({**images, "readme.txt": b"ignored"})
    response = e2e_stack.client.post(
        "/v1/batches",
        files={"archive": ("b.zip", upload, "application/zip")},
        data=restore_form(),
    )
    assert response.status_code == 202
    batch_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = e2e_stack.client.get(f"/v1/batches/{batch_id}").json()
        if status["state"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert status["counts"]["succeeded"] == 5, status
    result = e2e_stack.client.get(f"/v1/batches/{batch_id}/result")
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        names = archive.namelist()
    assert sorted(n for n in names if n.endswith(".png")) == [
        f"{i:04d}-img{i}.png" for i in range(5)
    ]


def test_cancel_stops_a_running_job(e2e_stack: Stack) -> None:
    e2e_stack.slow(400)  # 20 s of steps if nobody stops it
    try:
        job_id = submit(e2e_stack)
        e2e_stack.wait_running(job_id, step=2)
        assert e2e_stack.client.delete(f"/v1/jobs/{job_id}").status_code == 202
        started = time.monotonic()
        body = e2e_stack.wait_done(job_id, timeout_s=10)
    finally:
        e2e_stack.slow(0)
    assert body["state"] == "cancelled"
    assert time.monotonic() - started < 3
    assert body["progress"]["step"] < 400
    assert e2e_stack.client.get(f"/v1/jobs/{job_id}/result").status_code == 409
    follow_up = submit(e2e_stack)  # the worker is free again
    assert e2e_stack.wait_done(follow_up)["state"] == "succeeded"


def test_soft_time_limit_fails_readably_and_next_job_runs(e2e_stack: Stack) -> None:
    soft_limit_s = e2e_stack.soft_limit_s
    assert soft_limit_s is not None
    steps = int(soft_limit_s / 0.05) + 40
    e2e_stack.slow(steps)

    def slow_steps_begun(body: dict[str, Any]) -> bool:
        progress = body["progress"]
        return is_terminal(body) or (progress["step"] >= 1 and progress["total"] == steps)

    try:
        job_id = submit(e2e_stack)
        # The worker reads the switch when the steps start, a moment after the job reads
        # running: only once it has reported a fake step is the switch read (and can change).
        e2e_stack.wait([job_id], until=slow_steps_begun, poll_s=0.02)
    finally:
        e2e_stack.slow(0)  # so the next job is fast again
    body = e2e_stack.wait_done(job_id, timeout_s=30)
    assert body["state"] == "failed"
    assert body["error"]["code"] == "time_limit"
    assert f"{soft_limit_s} s" in body["error"]["message"]
    assert e2e_stack.wait_done(submit(e2e_stack))["state"] == "succeeded"


def test_worker_killed_mid_job_is_redelivered(e2e_stack: Stack) -> None:
    e2e_stack.slow(30)
    try:
        job_id = submit(e2e_stack)
        children = e2e_stack.kill_pool_when_running(job_id, step=2)
        assert children, e2e_stack.worker.tail()
        body = e2e_stack.wait_done(job_id, timeout_s=60)
    finally:
        e2e_stack.slow(0)
    assert body["state"] == "succeeded", body
    assert body["attempts"] == 2
    assert e2e_stack.client.get(f"/v1/jobs/{job_id}/result").status_code == 200


def test_webhook_is_signed_and_delivered(e2e_stack: Stack) -> None:
    received: list[tuple[bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            received.append((self.rfile.read(length), self.headers.get(SIGNATURE_HEADER, "")))
            self.send_response(200 if len(received) > 1 else 500)  # first attempt fails
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        job_id = submit(e2e_stack, callback_url=url)
        e2e_stack.wait_done(job_id)
        deadline = time.monotonic() + 20
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    assert len(received) == 2, e2e_stack.worker.tail()  # retried after the 500
    body, signature = received[-1]
    assert verify(DEV_WEBHOOK_SECRET, body, signature)
    payload = json.loads(body)
    assert payload["id"] == job_id and payload["state"] == "succeeded"


def test_analyze_matches_worker_capabilities(e2e_stack: Stack) -> None:
    caps = worker_capabilities(e2e_stack.redis.client())
    response = e2e_stack.client.post(
        "/v1/analyze", files={"image": ("x.png", png_bytes(64, 64), "image/png")}
    )
    if caps.get("analyze"):
        assert response.status_code == 200, response.text
        assert "band_spec" in response.json()
    else:
        assert response.status_code == 501
