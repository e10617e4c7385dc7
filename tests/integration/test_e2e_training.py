"""End to end: a tiny training job, then restorations that pick up each new version live."""

from __future__ import annotations

import json

import pytest

from tests.harness import BAND, Stack, png_bytes, restore_form

pytestmark = pytest.mark.integration


def train(stack: Stack, name: str) -> dict[str, object]:
    response = stack.client.post(
        "/v1/trainings",
        data={
            "model_name": name,
            "band_spec": json.dumps(BAND),
            "dataset": "digits",
            "model_kind": "omission",
            "steps": "3",
            "image_size": "16",
        },
    )
    assert response.status_code == 202, response.text
    body = stack.wait_done(response.json()["id"], timeout_s=90)
    assert body["state"] == "succeeded", body
    return body


def restore_with(stack: Stack, model: str) -> dict[str, object]:
    response = stack.client.post(
        "/v1/restorations",
        files={"image": ("x.png", png_bytes(16, 16, mode="L"), "image/png")},
        # an omission model only denoises outside the band (a noise-free request for band
        # fill would be refused at submit: model_cannot_fill_band)
        data=restore_form(method="sagd", model=model, steps=3, input_noise_std=0.05),
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    body = stack.wait_done(job_id)
    assert body["state"] == "succeeded", body
    report: dict[str, object] = stack.client.get(
        f"/v1/jobs/{job_id}/result", params={"part": "report"}
    ).json()
    return report


def test_training_registers_versions_and_workers_reload(e2e_stack: Stack) -> None:
    first = train(e2e_stack, "e2e-model")
    assert first["result"] == {
        "model": "e2e-model",
        "version": 1,
        "scores": first["result"]["scores"],  # type: ignore[index]
    }
    models = {m["name"]: m for m in e2e_stack.client.get("/v1/models").json()}
    entry = models["e2e-model"]
    assert entry["default_version"] == 1
    version = entry["versions"][0]
    assert version["kind"] == "omission" and version["data_hash"].startswith("sha256:")
    assert version["band"]["regions"] == BAND["regions"]
    assert restore_with(e2e_stack, "e2e-model")["models"] == {"e2e-model": 1}

    train(e2e_stack, "e2e-model")  # v2 becomes the default; the running worker must use it
    assert restore_with(e2e_stack, "e2e-model")["models"] == {"e2e-model": 2}
    assert restore_with(e2e_stack, "e2e-model:1")["models"] == {"e2e-model": 1}
