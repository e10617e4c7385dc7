"""Fixtures for every test directory, from the one harness (``tests/harness.py``): the session's
Redis (``redis_server``, and ``redis_url``: a clean database per test)."""

from __future__ import annotations

from tests.harness import REPO, redis_server, redis_url
from tests.skip_policy import pytest_runtest_makereport  # noqa: F401  (skips: hardware only)

__all__ = ["REPO", "redis_server", "redis_url"]
