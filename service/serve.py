"""Run the API in several processes, each listening on its own ``SO_REUSEPORT`` socket.

``python -m service.serve --host 0.0.0.0 --port 8000 --workers 2`` (the Dockerfile's command).

Why not ``uvicorn --workers N``: there, every process accepts from one shared socket, and the
process that wakes first takes most of a burst of new connections (a one-off count with 2
processes and 50 simultaneous connections: 30–39 on one, 11–20 on the other), so half the burst
waits on one core while the other idles. With one socket per process in a ``SO_REUSEPORT`` group the
kernel spreads connections over the processes by a hash of their addresses.

The parent binds the port first (so ``--port 0`` picks a free one and a taken port fails at
once), starts one ``uvicorn`` server per process, restarts a process that dies, and on SIGINT or
SIGTERM stops them all (uvicorn finishes the requests in flight) before exiting 0. Where the
platform has no ``SO_REUSEPORT``, or with ``--workers 1``, it runs plain uvicorn.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger("sagd.serve")
APP = "service.api.app:create_app"
STOP_TIMEOUT_S = 30.0
RESTART_PAUSE_S = 1.0
QUICK_EXIT_S = 5.0  # a process that dies this soon after starting counts towards a crash loop
MAX_QUICK_EXITS = 5
ORPHAN_CHECK_S = 1.0


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEADDR`` and ``SO_REUSEPORT``, not listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """What every API process is run with, the app and the worker count aside."""
    return {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "backlog": args.backlog,
        "proxy_headers": args.proxy_headers,
        "forwarded_allow_ips": args.forwarded_allow_ips,
    }


def serve_command(
    port: int,
    *,
    host: str = "127.0.0.1",
    workers: int = 1,
    log_level: str = "info",
    backlog: int = 2048,
) -> list[str]:
    """The command that runs the API on ``host:port`` in ``workers`` processes (this module, as
    the Dockerfile runs it)."""
    command = [sys.executable, "-m", "service.serve", "--host", host, "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", log_level, "--backlog", str(backlog)]
    return command


def serve_one(args: argparse.Namespace) -> None:
    """One API process on its own socket of the port's ``SO_REUSEPORT`` group. It stops itself
    (gracefully, as on SIGTERM) if its supervisor dies without stopping it (SIGKILL, OOM killer),
    so that a restarted supervisor never shares the port with orphans."""
    sock = reuseport_socket(args.host, args.port)
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
    uvicorn.Server(uvicorn.Config(APP, **uvicorn_options(args))).run(sockets=[sock])


def _stop_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    logger.warning("the API supervisor %d is gone; stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    """Starts ``workers`` API processes, restarts one that dies, stops them all on a signal."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.children: list[subprocess.Popen[bytes] | None] = [None] * args.workers
        self.started = [0.0] * args.workers
        self.quick_exits = 0
        self.stopping = False

    def command(self) -> list[str]:
        a = self.args
        command = serve_command(a.port, host=a.host, log_level=a.log_level, backlog=a.backlog)
        command += ["--one", "--forwarded-allow-ips", a.forwarded_allow_ips]
        return command + (["--proxy-headers"] if a.proxy_headers else [])

    def start(self, index: int) -> None:
        self.children[index] = subprocess.Popen(self.command())
        self.started[index] = time.monotonic()

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        for index in range(len(self.children)):
            self.start(index)
        logger.info(
            "sagd API on http://%s:%d in %d processes (SO_REUSEPORT)",
            self.args.host,
            self.args.port,
            len(self.children),
        )
        while not self.stopping:
            for index, child in enumerate(self.children):
                if child is None or child.poll() is None or self.stopping:
                    continue
                quick = time.monotonic() - self.started[index] < QUICK_EXIT_S
                self.quick_exits = self.quick_exits + 1 if quick else 0
                if self.quick_exits > MAX_QUICK_EXITS:
                    logger.error("API processes keep exiting at start; giving up")
                    self.stop()
                    return 1
                logger.warning(
                    "API process %d exited with %s; restarting it", child.pid, child.returncode
                )
                time.sleep(RESTART_PAUSE_S)
                self.start(index)
            time.sleep(0.2)
        return self.stop()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def stop(self) -> int:
        """SIGTERM to every process (uvicorn's graceful shutdown), SIGKILL past the timeout."""
        live = [c for c in self.children if c is not None and c.poll() is None]
        for child in live:
            child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in live:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("API process %d did not stop in time; killing it", child.pid)
                child.kill()
                child.wait()
        return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m service.serve", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="API processes (default 1)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--backlog", type=int, default=2048)
    p.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-* headers")
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a supervised process
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not 1 <= args.workers <= 64:
        parser().error("--workers must be in 1..64")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if args.one:
        serve_one(args)
        return 0
    if args.workers == 1 or not hasattr(socket, "SO_REUSEPORT"):
        # plain uvicorn (its own --workers on one shared socket)
        uvicorn.run(APP, workers=args.workers, **uvicorn_options(args))
        return 0
    try:  # fails now, not in every process, if the port is taken
        reserved = reuseport_socket(args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    args.port = int(reserved.getsockname()[1])  # --port 0: every process on the one chosen
    try:
        return Supervisor(args).run()
    finally:
        reserved.close()


if __name__ == "__main__":
    sys.exit(main())
