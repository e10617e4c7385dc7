"""GET/DELETE /v1/jobs/{id}: status, results, cancellation, ownership."""

from __future__ import annotations

import io
import json
from uuid import UUID, uuid4

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from service.api.context import AppContext
from service.jobs.images import encode_png
from tests.harness import FakeQueue, png_bytes, restore_form


def submit(client: TestClient) -> UUID:
    response = client.post(
        "/v1/restorations",
        files={"image": ("x.png", png_bytes(), "image/png")},
        data=restore_form(),
    )
    assert response.status_code == 202
    return UUID(response.json()["id"])


def ctx_of(client: TestClient) -> AppContext:
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def test_unknown_job_is_404(client: TestClient) -> None:
    response = client.get(f"/v1/jobs/{uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert client.get("/v1/jobs/not-a-uuid").status_code == 422


def test_progress_eta_and_result(client: TestClient) -> None:
    job_id = submit(client)
    ctx = ctx_of(client)
    assert client.get(f"/v1/jobs/{job_id}/result").status_code == 409
    assert ctx.jobs.claim(job_id, 3).outcome == "run"
    ctx.jobs.progress(job_id, 5, 20)
    running = client.get(f"/v1/jobs/{job_id}").json()
    assert running["state"] == "running" and running["attempts"] == 1
    assert running["progress"] == {"step": 5, "total": 20, "fraction": 0.25, "message": ""}
    assert running["eta_s"] is not None and running["eta_s"] >= 0
    pixels = np.linspace(0, 1, 24 * 32 * 3, dtype=np.float32).reshape(24, 32, 3)
    ctx.storage.write_bytes(ctx.storage.job_file(job_id, "result.png"), encode_png(pixels, 8))
    ctx.storage.write_json(ctx.storage.job_file(job_id, "report.json"), {"residual": 0.0})
    assert ctx.jobs.finish(job_id, "succeeded", result={"residual": 0.0})
    done = client.get(f"/v1/jobs/{job_id}").json()
    assert done["state"] == "succeeded" and done["result_url"] == f"/v1/jobs/{job_id}/result"
    assert done["eta_s"] is None and done["result"] == {"residual": 0.0}
    image = client.get(f"/v1/jobs/{job_id}/result")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (32, 24)
    report = client.get(f"/v1/jobs/{job_id}/result", params={"part": "report"})
    assert report.json() == {"residual": 0.0}
    missing = client.get(f"/v1/jobs/{job_id}/result", params={"part": "uncertainty"})
    assert missing.status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/result", params={"part": "x"}).status_code == 422


def test_cancel_queued_job_revokes_it(client: TestClient, queue: FakeQueue) -> None:
    job_id = submit(client)
    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 202
    assert response.json()["state"] == "cancelled"
    assert queue.revoked == [job_id]
    again = client.delete(f"/v1/jobs/{job_id}")
    assert again.status_code == 409 and again.json()["code"] == "already_finished"


def test_cancel_running_job_sets_the_flag(client: TestClient, queue: FakeQueue) -> None:
    job_id = submit(client)
    ctx = ctx_of(client)
    ctx.jobs.claim(job_id, 3)
    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 202
    assert response.json()["state"] == "running"  # stops at the worker's next step
    assert ctx.jobs.progress(job_id, 1, 10) is True  # what the worker's callback sees
    assert queue.revoked == []


def test_failed_job_shows_a_readable_error(client: TestClient) -> None:
    job_id = submit(client)
    ctx = ctx_of(client)
    ctx.jobs.claim(job_id, 3)
    ctx.jobs.fail(job_id, "time_limit", "exceeded the time limit of 5 s")
    body = client.get(f"/v1/jobs/{job_id}").json()
    assert body["state"] == "failed"
    assert body["error"] == {"code": "time_limit", "message": "exceeded the time limit of 5 s"}
    assert client.get(f"/v1/jobs/{job_id}/result").status_code == 409


def test_training_job_result_is_json(client: TestClient) -> None:
    response = client.post(
        "/v1/trainings",
        data={
            "model_name": "m1",
            "dataset": "digits",
            "band_spec": json.dumps({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}),
            "steps": "3",
        },
    )
    assert response.status_code == 202
    job_id = UUID(response.json()["id"])
    ctx = ctx_of(client)
    ctx.jobs.claim(job_id, 3)
    ctx.jobs.finish(job_id, "succeeded", result={"model": "m1", "version": 1})
    assert client.get(f"/v1/jobs/{job_id}/result").status_code == 404
    report = client.get(f"/v1/jobs/{job_id}/result", params={"part": "report"})
    assert report.json() == {"model": "m1", "version": 1}
