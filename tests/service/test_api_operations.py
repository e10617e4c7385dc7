"""Health, readiness, metrics, authentication, rate limits, body limits, error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.jobs.metrics import MetricsRecorder
from service.settings import hash_api_key
from tests.harness import FakeQueue, make_settings, png_bytes, restore_form

KEY_A, KEY_B = "key-a-secret", "key-b-secret"


@pytest.fixture
def authed(tmp_path: Path, redis_url: str) -> TestClient:
    settings = make_settings(
        tmp_path,
        redis_url,
        api_keys=[hash_api_key(KEY_A), hash_api_key(KEY_B)],
        rate_limit_per_s=1.0,
        rate_limit_burst=5,
    )
    return TestClient(create_app(settings, queue=FakeQueue()), raise_server_exceptions=False)


def test_health_ready_metrics(client: TestClient, queue: FakeQueue, redis_url: str) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["workers"] == 1
    queue.workers = 0
    assert client.get("/readyz").status_code == 503
    import redis

    MetricsRecorder(redis.Redis.from_url(redis_url)).job_finished("restore", "succeeded", 0.3)
    MetricsRecorder(redis.Redis.from_url(redis_url)).steps(10, 2.0)
    text = client.get("/metrics").text
    assert 'sagd_queue_depth{queue="restore"} 0.0' in text
    assert 'sagd_job_latency_seconds_bucket{kind="restore",le="0.5"} 1.0' in text
    assert 'sagd_job_latency_seconds_bucket{kind="restore",le="0.25"} 0.0' in text
    assert "sagd_steps_per_second 5.0" in text
    assert 'sagd_jobs_total{kind="restore",state="succeeded"} 1.0' in text


def test_every_v1_route_needs_a_key(authed: TestClient) -> None:
    paths = authed.get("/openapi.json").json()["paths"]
    checked = 0
    for path, ops in paths.items():
        if not path.startswith("/v1/"):
            continue
        concrete = path.replace("{job_id}", "00000000-0000-4000-8000-000000000000")
        concrete = concrete.replace("{batch_id}", "00000000-0000-4000-8000-000000000000")
        concrete = concrete.replace("{name}", "demo")
        for method in ops:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": ""}):
                response = authed.request(method.upper(), concrete, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["code"] == "unauthorized"
            checked += 1
    assert checked >= 12
    assert authed.get("/healthz").status_code == 200


def test_keys_own_their_jobs(authed: TestClient) -> None:
    files = {"image": ("x.png", png_bytes(), "image/png")}
    a = {"Authorization": f"Bearer {KEY_A}"}
    response = authed.post("/v1/restorations", files=files, data=restore_form(), headers=a)
    assert response.status_code == 202
    job = response.json()["id"]
    assert authed.get(f"/v1/jobs/{job}", headers={"X-API-Key": KEY_A}).status_code == 200
    other = authed.get(f"/v1/jobs/{job}", headers={"X-API-Key": KEY_B})
    assert other.status_code == 404
    assert authed.delete(f"/v1/jobs/{job}", headers={"X-API-Key": KEY_B}).status_code == 404


def test_rate_limit_429_with_retry_after(authed: TestClient) -> None:
    headers = {"X-API-Key": KEY_A}
    codes = [authed.get("/v1/models", headers=headers).status_code for _ in range(8)]
    assert codes[:5] == [200] * 5 and codes[-1] == 429
    limited = authed.get("/v1/models", headers=headers)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["code"] == "rate_limited"
    assert authed.get("/v1/models", headers={"X-API-Key": KEY_B}).status_code == 200


def test_chunked_body_over_the_limit_is_413(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(tmp_path, redis_url, max_upload_bytes=2048)
    app = create_app(settings, queue=FakeQueue())
    reads = {"chunks": 0}

    async def body() -> AsyncIterator[bytes]:
        yield (
            b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        for _ in range(10_000):  # 10 MB offered; the server must stop reading long before
            reads["chunks"] += 1
            yield b"x" * 1024

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(
                "/v1/restorations",
                content=body(),
                headers={"content-type": "multipart/form-data; boundary=xyz"},
            )

    import asyncio

    response = asyncio.run(run())
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert reads["chunks"] < 200  # stopped near the limit (+ multipart slack), not at 10 MB
    declared = TestClient(app).post(
        "/v1/restorations",
        content=b"x" * 200_000,
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert declared.status_code == 413


def test_errors_carry_request_id(client: TestClient) -> None:
    response = client.get(
        "/v1/jobs/00000000-0000-4000-8000-000000000000", headers={"X-Request-ID": "trace-1"}
    )
    assert response.headers["x-request-id"] == "trace-1"
    assert response.json()["request_id"] == "trace-1"
    odd = client.get("/nope", headers={"X-Request-ID": "bad id with spaces"})
    assert odd.status_code == 404 and odd.headers["x-request-id"] != "bad id with spaces"
    assert odd.json()["code"] == "not_found"
