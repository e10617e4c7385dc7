"""A skip is allowed for absent hardware only: any other skip fails the test.

An ``ImportError`` turned into a skip makes a broken install read as green, so a skip must give a
reason that starts with ``hardware:`` (a GPU that is absent, say) or be the explicit browser
opt-out ``SAGD_SKIP_BROWSER=1`` (docs/WEB.md). ``-ra`` in the pytest options prints each skip's
reason at the end of ``make test``.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

ALLOWED_SKIP_PREFIXES = ("hardware:", "SAGD_SKIP_BROWSER=1")


def skip_reason(report: pytest.TestReport) -> str:
    """The reason a skipped report carries (``longrepr`` is ``(path, line, "Skipped: …")``)."""
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return message.removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not report.skipped or hasattr(report, "wasxfail"):
        return report
    reason = skip_reason(report)
    if reason.startswith(ALLOWED_SKIP_PREFIXES):
        return report
    report.outcome = "failed"
    report.longrepr = (
        f"skipped for a reason that is not absent hardware: {reason!r}. A missing or broken "
        "dependency must fail the suite; only skips whose reason starts with "
        f"{' or '.join(repr(p) for p in ALLOWED_SKIP_PREFIXES)} are allowed (tests/skip_policy.py)."
    )
    return report
