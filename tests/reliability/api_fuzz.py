"""schemathesis over the app's OpenAPI spec, every operation, failures collected (not raised).

Used by ``test_schemathesis.py`` (a few examples per operation) and by ``bench_reliability``
(more). Each operation gets ``max_examples`` positive cases (schema-valid) and as many negative
ones (schema-violating: they must be refused with a 4xx). Checks: no server error, responses
match the schema (status code documented, content type, body), and negative data rejected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err

POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [not_a_server_error, negative_data_rejection, content_type_conformance]


@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "cases": self.cases,
            "server_errors": self.server_errors,
            "failures": len(self.failures),
            "skipped": self.skipped,
            "statuses": dict(sorted(self.statuses.items())),
        }


def run(app: Any, *, max_examples: int, seed: int = 0) -> FuzzReport:
    """Fuzz every operation of ``app`` (an ASGI app) in-process."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    report = FuzzReport()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            report.failures.append(
                {"operation": "?", "check": "invalid schema", "message": str(result.err())[:500]}
            )
            continue
        operation = result.ok()
        report.operations += 1
        for mode, checks in (
            (GenerationMode.POSITIVE, POSITIVE_CHECKS),
            (GenerationMode.NEGATIVE, NEGATIVE_CHECKS),
        ):
            _fuzz_operation(operation, mode, checks, report, max_examples, seed)
    return report


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    checks: list[Any],
    report: FuzzReport,
    max_examples: int,
    seed: int,
) -> None:
    seen: set[tuple[str, str]] = set()

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=seed == 0,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        response = case.call()
        report.cases += 1
        report.statuses[response.status_code] += 1
        if response.status_code >= 500:
            report.server_errors += 1
        try:
            case.validate_response(response, checks=checks)
        except (FailureGroup, Failure) as exc:
            failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            for failure in failures:
                key = (operation.label, failure.title)
                if key in seen:
                    continue
                seen.add(key)
                report.failures.append(
                    {
                        "operation": operation.label,
                        "mode": mode.value,
                        "status": response.status_code,
                        "check": failure.title,
                        "message": str(failure.message)[:500],
                        "body": response.text[:300],
                    }
                )

    try:
        one()
    except Unsatisfiable:  # no negative case exists (an operation without parameters)
        report.skipped.append(f"{operation.label} ({mode.value})")
