"""The embedded runner's supervised redis-server (``service.embedded.RedisSupervisor``) on its own:
SIGKILLed, it is started again on the same port with the same data folder, and what reached its
AOF is still there; stopped on purpose, it stays stopped."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from service.embedded import RedisSupervisor, redis_reachable
from tests.harness import wait_until

pytestmark = [pytest.mark.integration]


def test_a_killed_redis_comes_back_on_its_port_with_its_data(tmp_path: Path) -> None:
    supervisor = RedisSupervisor(tmp_path, check_every_s=0.1, restart_delay_s=0.2)
    try:
        client = redis.Redis.from_url(supervisor.url, decode_responses=True)
        client.set("kept", "yes")
        time.sleep(1.5)  # appendfsync everysec: on disk after at most a second or so
        first = supervisor.process.pid
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: supervisor.restarts == 1, what="restart", timeout_s=30)
        assert supervisor.process.pid != first
        assert redis_reachable(supervisor.url)  # the same URL: the same port
        assert client.get("kept") == "yes"  # the same data folder
    finally:
        supervisor.stop()
    assert supervisor.process.poll() is not None
    time.sleep(0.5)
    assert not redis_reachable(supervisor.url, timeout=0.2)  # stopped on purpose: not restarted
    assert supervisor.restarts == 1
