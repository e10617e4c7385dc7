"""Malformed files and decompression bombs sent through the real API.

* Generated malformed files (truncated, bad CRC, 0 bytes, header only, wrong magic, polyglots,
  flipped bytes, garbage after a valid magic) to ``POST /v1/restorations`` in-process: each is
  accepted (a mutation can still be a valid image) or refused with a 4xx JSON ``{code, message}``;
  never a 5xx. The decoder alone is fuzzed with 1,200 files in ``tests/service/test_api_images.py``;
  ``bench_reliability`` sends 1,200 of these through uvicorn.
* The bomb corpus of ``tests/service/test_api_images.py`` (pixel bombs, other formats) plus zip
  bombs for ``/v1/batches``, to a fresh API process under uvicorn: every one refused with a 4xx
  JSON body; the process's peak RSS (``VmHWM``, reset before each) rises < 50 MB for pixel bombs,
  and for zip bombs stays within what one member costs (not the archive's expanded size).
* A batch of many small-on-the-wire, large-in-memory images is decoded one item at a time.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.harness import Api, RedisServer, Stack, make_api, png_bytes
from tests.reliability.tools import (
    BOMB_FORM,
    BOMBS,
    MALFORMED_KINDS,
    bomb_rises,
    is_problem_json,
    malformed_corpus,
    peak_rise,
    ramp_gray_png,
    warm_up,
)


def test_malformed_files_are_4xx_json_never_5xx(api: Api) -> None:
    outcomes: Counter[str] = Counter()
    for kind, data in malformed_corpus(240, seed=1):
        response = api.client.post(
            "/v1/restorations", files={"image": ("f", data, "image/png")}, data=BOMB_FORM
        )
        assert response.status_code < 500, (kind, response.status_code, response.text)
        if response.status_code != 202:
            assert 400 <= response.status_code < 500, (kind, response.status_code)
            assert is_problem_json(response), (kind, response.text)
        outcomes[f"{kind}:{response.status_code}"] += 1
    print("malformed:", json.dumps(dict(sorted(outcomes.items()))))
    refused = sum(n for key, n in outcomes.items() if not key.endswith(":202"))
    assert refused >= 200
    assert {key.split(":")[0] for key in outcomes} == set(MALFORMED_KINDS)


@pytest.mark.integration
def test_bombs_refused_with_small_api_memory_rise(process_stack: Stack) -> None:
    with process_stack.fresh_api("bombs") as api:
        outcomes = bomb_rises(api)
    print("bombs:", json.dumps(outcomes))
    assert len(outcomes) >= 15
    for name, outcome in outcomes.items():
        assert 400 <= outcome["status"] < 500 and outcome["code"], (name, outcome)
        if name in BOMBS:
            assert outcome["rise_mib"] < 50, (name, outcome)
        else:  # one member's bytes at most (zipfile's read briefly holds two copies)
            assert outcome["rise_mib"] < 2.2 * outcome["largest_member_mib"] + 10, (name, outcome)


@pytest.mark.integration
def test_batch_items_are_decoded_one_at_a_time(process_stack: Stack) -> None:
    """48 images of 768² (a few KB each on the wire, 2.4 MB each as float32, 113 MB together):
    the batch's peak memory is that of a few items, not of all of them."""
    image = ramp_gray_png(768)
    files = [("images", (f"{i}.png", image, "image/png")) for i in range(48)]
    with (
        process_stack.fresh_api("batch") as api,
        httpx.Client(base_url=api.url, timeout=120) as client,
    ):
        warm_up(client)
        rise, response = peak_rise(
            api.pid, lambda: client.post("/v1/batches", files=files, data=BOMB_FORM)
        )
        assert response.status_code == 202, response.text
        client.delete(f"/v1/batches/{response.json()['id']}")  # spare the worker 48 jobs
    print(f"peak RSS rise for a batch of 48 768² images: {rise:.1f} MiB")
    assert rise < 60


def test_upload_limit_is_exact(tmp_path: Path, redis_server: RedisServer) -> None:
    """A file of exactly ``max_upload_bytes`` is read; one byte more is a 413."""
    limit = 8192
    api = make_api(tmp_path, redis_server.url, max_upload_bytes=limit)
    image = png_bytes(32, 24)
    with api.client as client:
        for size, status in ((limit, 202), (limit + 1, 413)):
            data = image + b"\0" * (size - len(image))  # bytes after IEND are ignored
            response = client.post(
                "/v1/restorations", files={"image": ("x.png", data)}, data=BOMB_FORM
            )
            assert response.status_code == status, (size, response.text)
        assert response.json()["code"] == "payload_too_large"


def test_a_batch_refused_midway_leaves_no_job_folders(api: Api) -> None:
    """Items are stored as they are decoded; a later bad item removes the earlier ones."""
    jobs = api.storage / "jobs"
    before = set(jobs.iterdir()) if jobs.is_dir() else set()
    files = [
        ("images", ("a.png", png_bytes(), "image/png")),
        ("images", ("b.png", png_bytes(seed=2), "image/png")),
        ("images", ("c.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")),
    ]
    response = api.client.post("/v1/batches", files=files, data=BOMB_FORM)
    assert response.status_code == 422 and "item 2 (c)" in response.json()["message"]
    ill_posed = {"band_spec": '{"regions":[{"kind":"annulus","low":0.0,"high":0.45}]}'}
    response = api.client.post("/v1/batches", files=files[:2], data={**BOMB_FORM, **ill_posed})
    assert response.status_code == 422, response.text
    after = set(jobs.iterdir()) if jobs.is_dir() else set()
    assert after == before
