"""schemathesis over the OpenAPI spec, every operation, against the real app in-process.

0 server errors, every response documented and matching its schema (error bodies included:
``ApiError``), schema-violating requests refused with a 4xx. The run is bounded here (a few
examples per operation); ``bench_reliability --schemathesis-examples`` runs a bigger one.
Workers are faked as able to analyze, so ``POST /v1/analyze`` is fuzzed instead of answering
its deliberate 501.
"""

from __future__ import annotations

import json
from pathlib import Path

from service.jobs.capabilities import publish
from tests.harness import RedisServer, make_api
from tests.reliability import api_fuzz

EXAMPLES = 8


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    api = make_api(tmp_path, redis_server.url, analyze_wait_s=0)
    publish(redis_server.client(), {"methods": ["notch"], "analyze": True, "train": True})
    with api.client:
        report = api_fuzz.run(api.client.app, max_examples=EXAMPLES)
        spec = api.client.get("/openapi.json").json()
    print("schemathesis:", json.dumps(report.summary()))
    operations = sum(len(ops) for ops in spec["paths"].values())
    assert report.operations == operations >= 19
    assert report.cases >= 5 * operations
    assert report.server_errors == 0, report.failures
    assert report.failures == []
    assert any(400 <= status < 500 for status in report.statuses)
