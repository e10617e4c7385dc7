"""Fixtures of the reliability tests, from the harness (``tests/harness.py``).

* ``api``: the real app in-process (``TestClient``) on the session's real Redis, with a fake queue
  (no workers) and rate limits out of the way. Server errors come back as 500 responses, never as
  exceptions in the test, so "no 5xx" is what the tests see.
* ``process_stack``: real processes: Redis with AOF, one Celery worker with short restore time
  limits (soft 3 s, hard 6 s), the API under ``service.serve``. One per session.
"""

from __future__ import annotations

from tests.harness import api, process_stack

__all__ = ["api", "process_stack"]
