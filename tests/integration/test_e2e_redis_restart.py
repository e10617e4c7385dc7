"""Redis restarts under a running worker: queued jobs survive (AOF) and the worker resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import png_bytes, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_jobs_queued_before_a_redis_restart_complete(tmp_path: Path) -> None:
    with start_stack(tmp_path, appendonly=True, name="restart") as stack:
        stack.slow(8)
        ids = [stack.submit(png_bytes(32, 32, seed=i)) for i in range(6)]
        stack.redis.restart()  # SIGTERM: Redis writes its AOF and exits; then the same port
        bodies = stack.wait(ids, timeout_s=90, poll_s=0.2)
        states = {j: body["state"] for j, body in bodies.items()}
        assert set(states.values()) == {"succeeded"}, (states, stack.worker.tail())
        assert stack.worker.alive  # the same worker, never restarted
