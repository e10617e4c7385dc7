"""POST /v1/restorations with a fake queue: status codes, then fields, then the error paths."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from service.api.context import AppContext
from service.jobs.contracts import TASK_RESTORE
from service.jobs.images import read_image
from service.jobs.storage import Storage
from service.settings import Settings
from tests.harness import FakeQueue, png_bytes, restore_form


def post(client: TestClient, data: bytes, **form: object) -> object:
    return client.post(
        "/v1/restorations", files={"image": ("x.png", data, "image/png")}, data=restore_form(**form)
    )


def test_accepted_with_location_and_job_fields(
    client: TestClient, queue: FakeQueue, settings: Settings
) -> None:
    response = client.post(
        "/v1/restorations",
        files={"image": ("../../evil name.png", png_bytes(40, 30), "image/png")},
        data=restore_form(),
    )
    assert response.status_code == 202
    body = response.json()
    job_id = UUID(body["id"])
    assert response.headers["location"] == f"/v1/jobs/{job_id}"
    assert body["state"] == "queued" and body["kind"] == "restore"
    assert body["progress"]["step"] == 0 and body["result_url"] is None
    assert queue.sent == [(TASK_RESTORE, job_id)]
    # The input is stored under the job id as a normalized 16-bit PNG, never under the client name.
    job_dir = Storage(settings.storage_path).job_dir(job_id)
    assert sorted(p.name for p in job_dir.iterdir()) == ["input.png"]
    assert read_image(job_dir / "input.png").shape == (30, 40, 3)
    assert not list(settings.storage_path.rglob("*evil*"))
    status = client.get(f"/v1/jobs/{job_id}").json()
    assert status["id"] == str(job_id) and status["timings"]["queue_s"] >= 0


def test_idempotency_key_returns_the_same_job(client: TestClient, queue: FakeQueue) -> None:
    headers = {"Idempotency-Key": "abc-123"}
    files = {"image": ("x.png", png_bytes(), "image/png")}
    first = client.post("/v1/restorations", files=files, data=restore_form(), headers=headers)
    second = client.post("/v1/restorations", files=files, data=restore_form(), headers=headers)
    other = client.post(
        "/v1/restorations", files=files, data=restore_form(), headers={"Idempotency-Key": "x"}
    )
    assert first.status_code == second.status_code == other.status_code == 202
    assert first.json()["id"] == second.json()["id"] != other.json()["id"]
    assert len(queue.sent) == 2


def test_params_are_stored_for_the_worker(client: TestClient, redis_url: str) -> None:
    import redis

    response = post(client, png_bytes(mode="I;16"), steps=7, seed=3, notch_rolloff="gaussian")
    assert response.status_code == 202
    raw = redis.Redis.from_url(redis_url, decode_responses=True).hget(
        f"sagd:job:{response.json()['id']}", "params"
    )
    params = json.loads(str(raw))
    assert params["steps"] == 7 and params["seed"] == 3 and params["notch_rolloff"] == "gaussian"
    assert params["output_bit_depth"] == 16  # a 16-bit input gives a 16-bit result
    assert params["band"]["regions"][0]["kind"] == "annulus"


def test_band_spec_errors_are_422_with_a_message(client: TestClient) -> None:
    cases = {
        "not json": "not valid JSON",
        "[]": "JSON object",
        json.dumps({"regions": [{"kind": "annulus", "low": 0.3, "high": 0.1}]}): "low < high",
        json.dumps({"regions": []}): "regions",
        json.dumps({"regions": [{"kind": "blob"}]}): "regions",
    }
    for spec, fragment in cases.items():
        response = post(client, png_bytes(), band_spec=spec)
        assert response.status_code == 422, spec
        body = response.json()
        assert body["code"] == "invalid_band_spec"
        assert fragment in body["message"], (spec, body["message"])


def test_band_spec_or_corruption_type_exactly_one(client: TestClient) -> None:
    assert post(client, png_bytes(), band_spec=None).status_code == 422
    both = post(client, png_bytes(), corruption_type="stripes")
    assert both.status_code == 422 and "exactly one" in both.json()["message"]
    unknown = post(client, png_bytes(), band_spec=None, corruption_type="nope")
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_corruption_type"


def test_ill_posed_band_for_the_image_size_is_422(client: TestClient) -> None:
    covers_dc = json.dumps({"regions": [{"kind": "annulus", "low": 0.0, "high": 0.7}]})
    response = post(client, png_bytes(), band_spec=covers_dc)
    assert response.status_code == 422
    assert response.json()["code"] == "ill_posed_band"


def test_learned_method_needs_a_registered_model(client: TestClient) -> None:
    response = post(client, png_bytes(), method="sagd", model="missing")
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_model"
    assert "missing" in response.json()["message"]


def test_param_ranges_are_validated(client: TestClient) -> None:
    for field, value in (("steps", 0), ("samples", 17), ("seed", -1), ("input_noise_std", -1)):
        response = post(client, png_bytes(), **{field: value})
        assert response.status_code == 422, field
        assert field in response.json()["message"]
    assert post(client, png_bytes(), method="magic").status_code == 422


def test_upload_spooled_to_disk_is_accepted_and_stored_whole(
    client: TestClient, queue: FakeQueue, settings: Settings
) -> None:
    """Uploads over 1 MiB (spooled to a temporary file, accepted on the thread pool) and small
    ones (accepted on the event loop) end the same way."""
    from service.api.submit import INLINE_UPLOAD_BYTES

    big = png_bytes(700, 600, seed=4)
    assert len(big) > INLINE_UPLOAD_BYTES
    ids = []
    for data in (big, png_bytes(70, 60, seed=5)):
        response = post(client, data)
        assert response.status_code == 202, response.text
        ids.append(UUID(response.json()["id"]))
    assert queue.sent == [(TASK_RESTORE, job_id) for job_id in ids]
    stored = Storage(settings.storage_path)
    assert read_image(stored.job_file(ids[0], "input.png")).shape == (600, 700, 3)
    assert read_image(stored.job_file(ids[1], "input.png")).shape == (60, 70, 3)


def test_bad_images_are_4xx_json(client: TestClient) -> None:
    good = png_bytes()
    cases = [
        (b"", 422, "empty_file"),
        (b"GIF89a" + good[6:], 415, "unsupported_format"),
        (good[:40], 422, "invalid_image"),
        (png_bytes(4, 4), 422, "image_too_small"),
    ]
    for data, status, code in cases:
        response = post(client, data)
        assert response.status_code == status, code
        body = response.json()
        assert body["code"] == code and body["message"] and body["request_id"]
        assert "Traceback" not in response.text


def test_pixel_and_byte_limits(tmp_path: object, redis_url: str) -> None:
    from pathlib import Path

    from service.api.app import create_app
    from tests.harness import make_settings

    settings = make_settings(Path(str(tmp_path)), redis_url, max_pixels=1000, max_upload_bytes=4096)
    with TestClient(create_app(settings, queue=FakeQueue())) as small:
        pixels = post(small, png_bytes(40, 30))
        assert pixels.status_code == 413 and pixels.json()["code"] == "too_many_pixels"
        big = post(small, png_bytes(30, 30) + b"\0" * 5000)
        assert big.status_code == 413 and big.json()["code"] == "payload_too_large"


def test_callback_url_private_targets_refused(client: TestClient) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.1/x", "ftp://example.com/x"):
        response = post(client, png_bytes(), callback_url=url)
        assert response.status_code == 422, url
        assert response.json()["code"] == "invalid_callback_url"


def test_callback_host_is_resolved_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DNS lookup can take seconds: it must not stall every request of the process."""
    import asyncio
    import socket

    on_loop: list[bool] = []

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[Any]:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    response = post(client, png_bytes(), callback_url="https://hooks.example.com/x")
    assert response.status_code == 202, response.text
    assert on_loop == [False]


def test_broker_down_is_503_and_nothing_created(client: TestClient, queue: FakeQueue) -> None:
    queue.fail = True
    response = post(client, png_bytes())
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response.headers["Retry-After"]
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    assert list(ctx.jobs.r.scan_iter("sagd:job:*")) == []


def test_job_and_its_task_are_written_together(client: TestClient, queue: FakeQueue) -> None:
    """The job's record and its queued task appear in one transaction: the task is on the
    broker's list as soon as the 202 is out."""
    response = post(client, png_bytes())
    assert response.status_code == 202
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    queued = [json.loads(m) for m in ctx.jobs.r.lrange(FakeQueue.KEY, 0, -1)]
    assert queued == [[TASK_RESTORE, response.json()["id"]]]
    assert ctx.jobs.get(response.json()["id"])["state"] == "queued"


def test_schedule_is_passed_on_and_validated(client: TestClient, redis_url: str) -> None:
    import redis

    response = post(client, png_bytes(), schedule="fit")
    assert response.status_code == 202
    raw = redis.Redis.from_url(redis_url, decode_responses=True).hget(
        f"sagd:job:{response.json()['id']}", "params"
    )
    assert json.loads(str(raw))["schedule"] == "fit"
    bad = post(client, png_bytes(), schedule="geometric")
    assert bad.status_code == 422 and "schedule" in bad.json()["message"]


def test_the_openapi_body_lists_the_image_and_every_form_field(client: TestClient) -> None:
    from service.api.routes.restorations import RestoreForm

    body = client.get("/openapi.json").json()["paths"]["/v1/restorations"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert body["required"] is True and schema["required"] == ["image"]
    assert schema["properties"]["image"]["format"] == "binary"
    assert set(schema["properties"]) == {"image", *RestoreForm.model_fields}
    assert schema["properties"]["method"]["enum"] == ["auto", "notch", "classical", "ddnm", "sagd"]


def test_form_fields_follow_the_usual_multipart_rules(client: TestClient, redis_url: str) -> None:
    import redis

    # An empty field is unset (as HTML forms send them): the default applies.
    empty = post(client, png_bytes(), steps="", output_bit_depth="", model="", seed=4)
    assert empty.status_code == 202, empty.text
    raw = redis.Redis.from_url(redis_url, decode_responses=True).hget(
        f"sagd:job:{empty.json()['id']}", "params"
    )
    params = json.loads(str(raw))
    assert params["steps"] == 50 and params["seed"] == 4 and params["output_bit_depth"] == 8
    # A value of the wrong type, an image sent as text, a field sent as a file: 422s that say so.
    wrong = post(client, png_bytes(), steps="many")
    assert wrong.status_code == 422 and "steps" in wrong.json()["message"]
    text_image = client.post("/v1/restorations", data={**restore_form(), "image": "x"})
    assert text_image.status_code == 422 and "image" in text_image.json()["message"]
    as_file = client.post(
        "/v1/restorations",
        files={"image": ("x.png", png_bytes(), "image/png"), "seed": ("s.txt", b"1")},
        data=restore_form(),
    )
    assert as_file.status_code == 422 and "seed" in as_file.json()["message"]


def test_a_heavy_band_check_leaves_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file can decode to a large image: the band check of a small one runs on the event
    loop (no thread hop), a heavy one (regions × pixels past ON_LOOP_BAND_CHECK) on the thread
    pool, so it cannot stall every other request of the process."""
    import asyncio

    from sagd_core.spectral.bands import BandSpec
    from service.api.band_coverage import ON_LOOP_BAND_CHECK, band_check_cost
    from service.api.routes import restorations

    where: list[str] = []
    original = restorations.check_band_for_image

    def spy(spec: BandSpec, height: int, width: int) -> None:
        try:
            asyncio.get_running_loop()
            where.append("loop")
        except RuntimeError:
            where.append("pool")
        original(spec, height, width)

    monkeypatch.setattr(restorations, "check_band_for_image", spy)
    wedges = {
        "regions": [
            {"kind": "wedge", "angle_deg": 5.0 * i, "tolerance_deg": 1.0, "low": 0.2, "high": 0.4}
            for i in range(12)
        ]
    }
    small, large = png_bytes(64, 64), png_bytes(512, 512)
    assert len(large) < (1 << 20)  # kept in memory by Starlette: the "inline" path
    spec = BandSpec.model_validate(wedges)
    assert band_check_cost(spec, 64, 64) <= ON_LOOP_BAND_CHECK < band_check_cost(spec, 512, 512)
    for data in (small, large):
        response = post(client, data, band_spec=json.dumps(wedges))
        assert response.status_code == 202, response.text
    assert where == ["loop", "pool"]
