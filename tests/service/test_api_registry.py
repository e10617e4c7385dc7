"""Corruption types, trainings, the model registry and /v1/analyze."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from service.api.context import AppContext
from service.jobs.capabilities import publish
from service.jobs.contracts import TASK_ANALYZE, TASK_TRAIN
from tests.harness import BAND, FakeQueue, png_bytes, restore_form


def ctx_of(client: TestClient) -> AppContext:
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def test_corruption_types_create_list_use(client: TestClient) -> None:
    created = client.post("/v1/corruption-types", json={"name": "stripes-1", "band": BAND})
    assert created.status_code == 201
    assert created.json()["name"] == "stripes-1"
    assert created.json()["band"]["regions"][0]["high"] == 0.3
    duplicate = client.post("/v1/corruption-types", json={"name": "stripes-1", "band": BAND})
    assert duplicate.status_code == 409
    assert [c["name"] for c in client.get("/v1/corruption-types").json()] == ["stripes-1"]
    assert client.get("/v1/corruption-types/stripes-1").status_code == 200
    assert client.get("/v1/corruption-types/nope").status_code == 404
    used = client.post(
        "/v1/restorations",
        files={"image": ("x.png", png_bytes(), "image/png")},
        data=restore_form(band_spec=None, corruption_type="stripes-1"),
    )
    assert used.status_code == 202


def test_corruption_type_validation(client: TestClient) -> None:
    for name in ("Upper", "-lead", "a/b", "../x", "x" * 65, ""):
        response = client.post("/v1/corruption-types", json={"name": name, "band": BAND})
        assert response.status_code == 422, name
    bad_band = {"regions": [{"kind": "annulus", "low": 0.2, "high": 0.1}]}
    response = client.post("/v1/corruption-types", json={"name": "ok", "band": bad_band})
    assert response.status_code == 422 and response.json()["code"] == "invalid_band_spec"


def test_models_listing_and_default_version(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/v1/models").json() == []
    ctx = ctx_of(client)
    for score in (0.5, 0.25):
        staged = tmp_path / f"stage-{score}"
        staged.mkdir()
        (staged / "config.json").write_text("{}")
        ctx.models.add_version(
            "demo",
            staged,
            {"kind": "omission", "band": BAND, "data_hash": "abc", "scores": {"loss": score}},
        )
    models = client.get("/v1/models").json()
    assert [m["name"] for m in models] == ["demo"]
    assert models[0]["default_version"] == 2
    assert [v["version"] for v in models[0]["versions"]] == [1, 2]
    assert models[0]["versions"][0]["scores"] == {"loss": 0.5}
    assert models[0]["versions"][0]["data_hash"] == "abc"
    response = client.put("/v1/models/demo/default-version", json={"version": 1})
    assert response.status_code == 200 and response.json()["default_version"] == 1
    assert client.put("/v1/models/demo/default-version", json={"version": 9}).status_code == 404
    assert client.get("/v1/models/none").status_code == 404
    # A learned method now passes the model check: an omission model denoises the trusted
    # bands (declared input noise) but cannot fill the band (tests/service/test_api_model_checks).
    ok = client.post(
        "/v1/restorations",
        files={"image": ("x.png", png_bytes(), "image/png")},
        data=restore_form(method="sagd", model="demo:1", input_noise_std=0.05),
    )
    assert ok.status_code == 202
    for bad in ("demo:9", "demo:x", "demo,ghost"):
        response = client.post(
            "/v1/restorations",
            files={"image": ("x.png", png_bytes(), "image/png")},
            data=restore_form(method="sagd", model=bad),
        )
        assert response.status_code == 422, bad


def test_training_requests(client: TestClient, queue: FakeQueue) -> None:
    base = {"model_name": "faces", "band_spec": json.dumps(BAND), "steps": "5"}
    response = client.post("/v1/trainings", data={**base, "dataset": "digits"})
    assert response.status_code == 202
    assert queue.sent[-1][0] == TASK_TRAIN
    assert response.headers["location"].startswith("/v1/jobs/")
    corruption = json.dumps({"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": 1.0})
    synthetic = client.post(
        "/v1/trainings", data={**base, "dataset": "lfw", "synthetic_corruption": corruption}
    )
    assert synthetic.status_code == 202, synthetic.text
    bad = {"dataset": "/etc", "synthetic_corruption": '{"kind": "nope"}'}
    for field, value in bad.items():
        extra = {"dataset": "digits", field: value}
        response = client.post("/v1/trainings", data={**base, **extra})
        assert response.status_code == 422, (field, response.text)
    declared = client.post(
        "/v1/trainings", data={**base, "dataset": "digits", "declared_corruption": "noise"}
    )
    assert declared.status_code == 202, declared.text
    jobs = ctx_of(client).jobs
    assert jobs.params(jobs.get(declared.json()["id"]) or {})["declared_corruption"] == "noise"
    for extra in (
        {"model_kind": "omission"},
        {"synthetic_corruption": corruption},
        {"declared_corruption": "stripes"},
    ):
        refused = client.post(
            "/v1/trainings",
            data={**base, "dataset": "digits", "declared_corruption": "noise", **extra},
        )
        assert refused.status_code == 422, (extra, refused.text)
    neither = client.post("/v1/trainings", data=base)
    assert neither.status_code == 422 and neither.json()["code"] == "invalid_dataset"
    bad_name = client.post("/v1/trainings", data={**base, "dataset": "digits", "model_name": "A"})
    assert bad_name.status_code == 422
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(3):
            archive.writestr(f"img{i}.png", png_bytes(seed=i))
    with_zip = client.post(
        "/v1/trainings",
        data=base,
        files={"dataset_zip": ("d.zip", buffer.getvalue(), "application/zip")},
    )
    assert with_zip.status_code == 202
    job_id = with_zip.json()["id"]
    stored = ctx_of(client).storage.path("jobs", job_id, "dataset.zip")
    assert stored.read_bytes() == buffer.getvalue()


def test_analyze_is_501_until_a_worker_can(client: TestClient, queue: FakeQueue) -> None:
    files = {"image": ("x.png", png_bytes(), "image/png")}
    response = client.post("/v1/analyze", files=files)
    assert response.status_code == 501 and "analyze" in response.json()["message"]
    publish(ctx_of(client).redis, {"analyze": True, "methods": ["notch"], "train": True})
    pending = client.post("/v1/analyze", files=files)  # no worker runs it: 202 after the wait
    assert pending.status_code == 202
    assert queue.sent[-1][0] == TASK_ANALYZE
