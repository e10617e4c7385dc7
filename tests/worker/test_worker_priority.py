"""The worker lowers its own CPU priority to an absolute level (run in child processes: a
process cannot raise its own priority back without privileges)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import REPO


def _niceness_after(start: int, target: int) -> int:
    code = (
        "import os, sys\n"
        "from worker.priority import lower_priority\n"
        f"os.nice({start})\n"
        f"print(lower_priority({target}), os.getpriority(os.PRIO_PROCESS, 0))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == out[1]  # the value returned is the one in effect
    return int(out[0])


@pytest.mark.parametrize(
    ("start", "target", "expected"),
    [(0, 10, 10), (0, 0, 0), (15, 10, 15), (3, 19, 19)],
)
def test_lower_priority_sets_an_absolute_floor(start: int, target: int, expected: int) -> None:
    assert _niceness_after(start, target) == expected
