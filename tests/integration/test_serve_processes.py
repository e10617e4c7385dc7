"""``python -m service.serve --workers 2`` (the Dockerfile's API command): one SO_REUSEPORT
socket per process, connections spread over both, a dead process restarted, SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from service.serve import serve_command
from tests.harness import free_port, wait_http

pytestmark = pytest.mark.integration


def _is_api(process: psutil.Process) -> bool:
    """A live ``service.serve`` process (a killed one not yet reaped is a zombie: not live)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE and "service.serve" in " ".join(
            process.cmdline()
        )
    except psutil.Error:  # gone, or a zombie whose command line cannot be read
        return False


def _api_processes(parent: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(parent).children() if _is_api(p)]


def _listening(process: psutil.Process, port: int) -> bool:
    return any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        for c in process.net_connections("tcp")
    )


def _connections_per_process(processes: list[psutil.Process], port: int) -> list[int]:
    return [
        sum(
            1
            for c in p.net_connections("tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )
        for p in processes
    ]


def _serve_two(port: int, tmp_path: Path, redis_url: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a 2-process API on ``port`` (development mode)."""
    env = {
        **os.environ,
        "SAGD_ENV": "development",
        "SAGD_REDIS_URL": redis_url,
        "SAGD_STORAGE_ROOT": str(tmp_path / "storage"),
    }
    env.pop("SAGD_API_KEYS", None)
    return serve_command(port, workers=2), env


def test_processes_share_the_port_restart_and_stop(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    command, env = _serve_two(port, tmp_path, redis_url)
    with (tmp_path / "serve.log").open("wb") as log:
        parent = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url)
        processes = _api_processes(parent.pid)
        assert len(processes) == 2
        deadline = time.monotonic() + 60  # both listening (one may still be importing)
        while not all(_listening(p, port) for p in processes):
            assert time.monotonic() < deadline, "an API process never listened"
            time.sleep(0.1)
        # 64 connections from different source ports: the kernel hashes them over both sockets.
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        try:
            deadline = time.monotonic() + 10
            while sum(counts := _connections_per_process(processes, port)) < 64:
                assert time.monotonic() < deadline, counts
                time.sleep(0.1)
            assert min(counts) >= 12, counts  # P(< 12 of 64 | fair coin) < 1e-6
        finally:
            for sock in sockets:
                sock.close()

        killed = processes[0].pid
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while killed in (pids := [p.pid for p in _api_processes(parent.pid)]) or len(pids) < 2:
            assert time.monotonic() < deadline, "the killed process was not replaced"
            time.sleep(0.2)
        wait_http(url)

        children = [p.pid for p in _api_processes(parent.pid)]
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=40) == 0
        for pid in children:
            assert not psutil.pid_exists(pid) or not _is_api(psutil.Process(pid))
    finally:
        leftovers = _api_processes(parent.pid) if parent.poll() is None else []
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for child in leftovers:
            child.kill()


def test_processes_stop_when_the_supervisor_is_killed(tmp_path: Path, redis_url: str) -> None:
    """A supervisor killed outright (SIGKILL, the OOM killer) leaves no API process behind."""
    port = free_port()
    command, env = _serve_two(port, tmp_path, redis_url)
    quiet = subprocess.DEVNULL
    parent = subprocess.Popen(command, env=env, stdout=quiet, stderr=quiet)
    children: list[psutil.Process] = []
    try:
        wait_http(f"http://127.0.0.1:{port}")
        children = _api_processes(parent.pid)
        assert len(children) == 2
        parent.kill()
        parent.wait()
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], "API processes outlived their supervisor"
    finally:
        for child in children:
            if child.is_running():
                child.kill()


def test_taken_port_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(serve_command(port, workers=2), capture_output=True, timeout=60)
    assert result.returncode != 0
    assert b"Address already in use" in result.stderr
