"""One restore contract: every parameter of ``sagd_core.restore.request.RestoreOptions`` reaches
both REST forms, the stored job and the library's request, with no second declaration."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from sagd_core.restore.request import RestoreOptions, RestoreRequest
from service.api.routes.restorations import RestoreForm
from service.jobs.contracts import RestoreParams

BAND = json.dumps({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
#: A value other than the default for each option, as a form sends it.
NON_DEFAULT = {
    "method": "notch",
    "notch_rolloff": "gaussian",
    "notch_width": "0.02",
    "steps": "7",
    "seed": "3",
    "samples": "2",
    "input_noise_std": "0.01",
    "estimator": "sample",
    "schedule": "cosine",
}


def png() -> bytes:
    pixels = (np.random.default_rng(0).random((24, 32)) * 255).astype(np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def test_every_option_has_a_non_default_case_here() -> None:
    assert set(NON_DEFAULT) == set(RestoreOptions.model_fields)


@pytest.mark.parametrize("name", sorted(RestoreOptions.model_fields))
def test_an_option_is_declared_once_and_reaches_every_layer(name: str) -> None:
    assert name in RestoreForm.model_fields
    assert name in RestoreParams.model_fields and name in RestoreRequest.model_fields
    # Derived models add fields; they never redeclare an option with another type.
    for derived in (RestoreForm, RestoreParams, RestoreRequest):
        assert derived.model_fields[name].annotation == RestoreOptions.model_fields[name].annotation


def test_both_routes_take_every_option_and_the_job_and_request_carry_it(
    client: TestClient, redis_url: str
) -> None:
    spec = client.get("/openapi.json").json()
    single = spec["paths"]["/v1/restorations"]["post"]["requestBody"]["content"]
    assert set(RestoreOptions.model_fields) <= set(
        single["multipart/form-data"]["schema"]["properties"]
    )
    assert set(RestoreOptions.model_fields) <= set(
        spec["components"]["schemas"]["RestoreForm"]["properties"]
    )

    store = redis.Redis.from_url(redis_url, decode_responses=True)
    for route, files in (
        ("/v1/restorations", {"image": ("x.png", png(), "image/png")}),
        ("/v1/batches", {"images": ("x.png", png(), "image/png")}),
    ):
        response = client.post(route, files=files, data={"band_spec": BAND, **NON_DEFAULT})
        assert response.status_code == 202, (route, response.text)
        body = response.json()
        job_id = body["id"] if route == "/v1/restorations" else body["items"][0]["job_id"]
        stored = json.loads(str(store.hget(f"sagd:job:{job_id}", "params")))
        params = RestoreParams.model_validate(stored)
        request = params.request()
        assert type(request) is RestoreRequest
        for name, sent in NON_DEFAULT.items():
            value = getattr(request, name)
            shown = value.kind if name == "schedule" else value
            assert str(shown) == sent, (route, name, shown)


@pytest.mark.parametrize("depth", ["0", "7", "32"])
def test_only_8_or_16_bit_output_is_accepted_at_submit(client: TestClient, depth: str) -> None:
    response = client.post(
        "/v1/restorations",
        files={"image": ("x.png", png(), "image/png")},
        data={"band_spec": BAND, "method": "notch", "output_bit_depth": depth},
    )
    assert response.status_code == 422 and "output_bit_depth" in response.json()["message"]
