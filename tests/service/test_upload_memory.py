"""Memory per upload in a real API process (issue #20 item 4): the API checks an upload without
decoding it to float, so one 4096² 16-bit RGB upload (96 MiB of samples, 192 MiB as float32;
+558 MiB before) raises its RSS by at most 100 MiB, 20 of them in flight keep it under 1 GiB,
and it returns to within 50 MiB of its idle size afterwards.

The API runs under ``service.serve`` on a real Redis (no worker: the jobs stay queued), its
memory read from ``/proc/<pid>/status``. ``benchmarks/reliability_memory.py`` prints the same
figures and the worker's peak RSS for a 4096² restore.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ApiProcess, start_api, start_redis, worker_env
from tests.reliability.tools import ramp_png16, upload_memory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    base: Path = tmp_path_factory.mktemp("upload-memory")
    redis_server = start_redis(base / "redis")
    try:
        env = worker_env(redis_server.url, base / "storage", SAGD_RATE_LIMIT_BURST="1000000")
        api = start_api(env, base / "api.log")
        try:
            yield api
        finally:
            api.stop()
    finally:
        redis_server.stop()


@pytest.fixture(scope="module")
def big_png() -> bytes:
    return ramp_png16(4096)


def test_one_large_upload_raises_api_memory_by_at_most_100_mib(
    api_process: ApiProcess, big_png: bytes
) -> None:
    outcome = upload_memory(api_process, big_png, uploads=1)
    print("one 4096² 16-bit RGB upload:", json.dumps(outcome))
    assert outcome["statuses"] == {202: 1}
    assert outcome["rise_mib"] <= 100


def test_twenty_large_uploads_in_flight_stay_under_1_gib_and_memory_comes_back(
    api_process: ApiProcess, big_png: bytes
) -> None:
    outcome = upload_memory(api_process, big_png, uploads=20)
    print("twenty 4096² 16-bit RGB uploads at once:", json.dumps(outcome))
    assert outcome["statuses"] == {202: 20}
    assert outcome["peak_mib"] <= 1024
    assert outcome["after_above_idle_mib"] <= 50
