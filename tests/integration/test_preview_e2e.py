"""A learned restoration's previews end to end: a tiny full-support model trained through the
API, then a DDNM restoration of a wide image (two tiles) followed with
``GET /v1/jobs/{id}/events?preview=1`` by a real client (httpx streaming) against the API in its
own process, on the real Redis, with the real Celery worker sampling. The stream announces a
preview; its URL serves an 8-bit PNG of at most 128 px with the image's aspect ratio; then the
job is cancelled (no need to wait for 1000 steps) and its stream ends."""

from __future__ import annotations

import json

import cv2
import httpx
import numpy as np
import pytest

from tests.harness import BAND, Stack, restore_form

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEIGHT, WIDTH = 180, 300  # wider than a tile (256 px): the preview is assembled from two


def train_full_model(stack: Stack, name: str) -> None:
    response = stack.client.post(
        "/v1/trainings",
        data={
            "model_name": name,
            "band_spec": json.dumps(BAND),
            "dataset": "digits",
            "model_kind": "full",
            "steps": "3",
            "image_size": "16",
        },
    )
    assert response.status_code == 202, response.text
    body = stack.wait_done(response.json()["id"], timeout_s=120)
    assert body["state"] == "succeeded", body


def wide_png() -> bytes:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = 128 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0)
    return cv2.imencode(".png", pixels.astype(np.uint8))[1].tobytes()


def test_a_learned_restoration_streams_previews_of_the_whole_image(e2e_stack: Stack) -> None:
    train_full_model(e2e_stack, "preview-full")
    with (
        e2e_stack.fresh_api("previews") as api,
        httpx.Client(base_url=api.url, timeout=60) as client,
    ):
        response = client.post(
            "/v1/restorations",
            files={"image": ("wide.png", wide_png(), "image/png")},
            data=restore_form(method="ddnm", model="preview-full", steps=1000),
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        events: list[tuple[str, dict[str, object]]] = []
        fetched: list[httpx.Response] = []
        name = ""
        with client.stream("GET", f"/v1/jobs/{job_id}/events?preview=1") as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((name, json.loads(line.removeprefix("data: "))))
                    if name == "preview" and not fetched:
                        url = str(events[-1][1]["url"])
                        fetched.append(client.get(url))
                        assert client.delete(f"/v1/jobs/{job_id}").status_code == 202
        previews = [data for event, data in events if event == "preview"]
        assert previews, [event for event, _ in events]
        assert events[-1][0] == "state" and events[-1][1]["state"] == "cancelled"
        first = previews[0]
        assert first["id"] == job_id and first["number"] == 1
        assert str(first["url"]).startswith(f"/v1/jobs/{job_id}/preview")
        (image_response,) = fetched
        assert image_response.status_code == 200
        assert image_response.headers["content-type"] == "image/png"
        image = cv2.imdecode(np.frombuffer(image_response.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image.dtype == np.uint8
        height, width = image.shape[:2]
        assert max(height, width) == 128 and (first["width"], first["height"]) == (width, height)
        assert abs(width / height - WIDTH / HEIGHT) < 0.03
        assert client.get(f"/v1/jobs/{job_id}/preview").status_code == 200  # still there
