"""End to end through a real broker and a real worker: restore, batch, cancel, kill, limits."""

from __future__ import annotations

import io
import json
import os
import signal
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
from tests.conftest import free_port
from tests.integration.conftest import SOFT_LIMIT_S, Stack
from tests.service.api_helpers import png_bytes, restore_form

pytestmark = pytest.mark.integration


def submit(stack: Stack, **form: Any) -> str:
    response = stack.client.post(
        "/v1/restorations",
        files={"image": ("x.png", png_bytes(48, 40), "image/png")},
        data=restore_form(**form),
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_ready_and_capabilities(stack: Stack) -> None:
    ready = stack.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["workers"] >= 1
    caps = worker_capabilities(stack.redis.client())
    assert "notch" in caps["methods"]


def test_worker_computes_below_the_api_priority(stack: Stack) -> None:
    # The test process (and so the in-process API) runs at its own niceness; the worker and its
    # pool process lower theirs to SAGD_WORKER_NICENESS (default 10) by themselves.
    pids = [stack.worker.process.pid, *stack.worker.children()]
    assert len(pids) >= 2
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {
        max(10, os.getpriority(os.PRIO_PROCESS, 0))
    }


def test_restore_notch(stack: Stack) -> None:
    job_id = submit(stack)
    body = stack.wait_done(job_id)
    assert body["state"] == "succeeded", body
    assert body["progress"]["fraction"] == 1.0 and body["attempts"] == 1
    image = stack.client.get(f"/v1/jobs/{job_id}/result")
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (48, 40)
    report = stack.client.get(f"/v1/jobs/{job_id}/result", params={"part": "report"}).json()
    assert report["method"] == "notch"
    assert report["out_of_band_residual"] is not None
    metrics = stack.client.get("/metrics").text
    assert 'sagd_jobs_total{kind="restore",state="succeeded"}' in metrics


def test_batch_zip(stack: Stack) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(5):
            archive.writestr(f"img{i}.png", png_bytes(32, 32, seed=i))
        archive.writestr("readme.txt", "ignored")
    response = stack.client.post(
        "/v1/batches",
        files={"archive": ("b.zip", buffer.getvalue(), "application/zip")},
        data=restore_form(),
    )
    assert response.status_code == 202
    batch_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = stack.client.get(f"/v1/batches/{batch_id}").json()
        if status["state"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert status["counts"]["succeeded"] == 5, status
    result = stack.client.get(f"/v1/batches/{batch_id}/result")
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        names = archive.namelist()
    assert sorted(n for n in names if n.endswith(".png")) == [
        f"{i:04d}-img{i}.png" for i in range(5)
    ]


def test_cancel_stops_a_running_job(stack: Stack) -> None:
    stack.slow(400)  # 20 s of steps if nobody stops it
    try:
        job_id = submit(stack)
        stack.wait_job(job_id, lambda b: b["state"] == "running" and b["progress"]["step"] >= 2)
        assert stack.client.delete(f"/v1/jobs/{job_id}").status_code == 202
        started = time.monotonic()
        body = stack.wait_done(job_id, timeout=10)
    finally:
        stack.slow(0)
    assert body["state"] == "cancelled"
    assert time.monotonic() - started < 3
    assert body["progress"]["step"] < 400
    assert stack.client.get(f"/v1/jobs/{job_id}/result").status_code == 409
    follow_up = submit(stack)  # the worker is free again
    assert stack.wait_done(follow_up)["state"] == "succeeded"


def test_soft_time_limit_fails_readably_and_next_job_runs(stack: Stack) -> None:
    stack.slow(int(SOFT_LIMIT_S / 0.05) + 40)
    try:
        job_id = submit(stack)
        stack.wait_job(job_id, lambda b: b["state"] == "running")
    finally:
        stack.slow(0)  # read at task start, so the next job is fast again
    body = stack.wait_done(job_id, timeout=30)
    assert body["state"] == "failed"
    assert body["error"]["code"] == "time_limit"
    assert f"{SOFT_LIMIT_S} s" in body["error"]["message"]
    assert stack.wait_done(submit(stack))["state"] == "succeeded"


def test_worker_killed_mid_job_is_redelivered(stack: Stack) -> None:
    stack.slow(30)
    try:
        job_id = submit(stack)
        stack.wait_job(job_id, lambda b: b["state"] == "running" and b["progress"]["step"] >= 2)
        children = stack.worker.children()
        assert children, stack.worker.tail()
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        body = stack.wait_done(job_id, timeout=60)
    finally:
        stack.slow(0)
    assert body["state"] == "succeeded", body
    assert body["attempts"] == 2
    assert stack.client.get(f"/v1/jobs/{job_id}/result").status_code == 200


def test_webhook_is_signed_and_delivered(stack: Stack) -> None:
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
        job_id = submit(stack, callback_url=url)
        stack.wait_done(job_id)
        deadline = time.monotonic() + 20
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    assert len(received) == 2, stack.worker.tail()  # retried after the 500
    body, signature = received[-1]
    assert verify(DEV_WEBHOOK_SECRET, body, signature)
    payload = json.loads(body)
    assert payload["id"] == job_id and payload["state"] == "succeeded"


def test_analyze_matches_worker_capabilities(stack: Stack) -> None:
    caps = worker_capabilities(stack.redis.client())
    response = stack.client.post(
        "/v1/analyze", files={"image": ("x.png", png_bytes(64, 64), "image/png")}
    )
    if caps.get("analyze"):
        assert response.status_code == 200, response.text
        assert "band_spec" in response.json()
    else:
        assert response.status_code == 501
