"""The end-to-end tests run on the session's ``e2e_stack`` (``tests/harness.py``): a real Redis,
a real Celery worker (soft restore time limit 4 s, hard 8 s) and the real app in this process."""

from __future__ import annotations

from tests.harness import e2e_stack

__all__ = ["e2e_stack"]
