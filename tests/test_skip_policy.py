"""The suite's skip policy (tests/skip_policy.py): a skip for anything but absent hardware fails."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CASES = """
import pytest

def test_a_missing_dependency_is_not_a_skip():
    pytest.importorskip("sagd_no_such_module")

@pytest.mark.skipif(True, reason="needs a library that is not installed")
def test_a_skip_mark_for_a_library():
    pass

@pytest.mark.skipif(True, reason="hardware: no CUDA GPU here")
def test_an_absent_gpu():
    pass

def test_the_browser_opt_out():
    pytest.skip("SAGD_SKIP_BROWSER=1, skipping: no chromium")

def test_a_plain_pass():
    pass
"""


def test_only_hardware_and_the_browser_opt_out_may_skip(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from tests.skip_policy import pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest("-ra", "-p", "no:cacheprovider")
    # The importorskip fails in the call; the skip mark fails in setup (an error).
    result.assert_outcomes(passed=1, skipped=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*not absent hardware*sagd_no_such_module*"])
    result.stdout.fnmatch_lines(["*SKIPPED*hardware: no CUDA GPU here*"])
