"""The workers' Celery app in the test harness: the production app, with a slow-steps switch.

``celery -A tests.worker_app worker`` runs ``worker.celery_app``'s app and tasks unchanged; only
the engine of each pool process's context is a :class:`SlowEngine` (injected through
``worker.context.set_factory``). When the file named by ``SAGD_TEST_SLOW_FILE`` exists and holds
N, each restoration first runs N fake progress steps of ``SAGD_TEST_STEP_S`` seconds (default
0.05), so that tests have a slow job to cancel, kill or time out; ``N stuck`` also holds off the
soft time limit during the steps, like native code that does not return to Python, so that
tests can reach the hard time limit. The file is read when a restoration starts.
"""

from __future__ import annotations

import inspect
import os
import signal
import time
from pathlib import Path
from typing import Any

from worker import context
from worker.celery_app import app, queue_webhook
from worker.engine import CoreEngine, EngineResult, StepCallback

__all__ = ["SlowEngine", "app"]


def slow_steps(progress: StepCallback) -> None:
    """The fake steps the switch file asks for (none without the file)."""
    switch = os.environ.get("SAGD_TEST_SLOW_FILE")
    try:
        words = Path(switch).read_text().split() if switch else []
    except OSError:  # no file: a normal restoration
        return
    steps = int(words[0]) if words else 0
    stuck = "stuck" in words[1:]
    pause = float(os.environ.get("SAGD_TEST_STEP_S", "0.05") or 0.05)
    # "stuck": hold signals during the steps as a long call into native code does (Python runs
    # no handler until it returns): the soft time limit (SIGUSR1 in Celery's prefork pool) and
    # the pool's SIGTERM, so only the hard time limit's SIGKILL can stop the job.
    held = {signal.SIGUSR1, signal.SIGTERM} if stuck else set()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for step in range(1, steps + 1):
            time.sleep(pause)
            progress(step, steps)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class SlowEngine(CoreEngine):
    """The real engine; a restoration first runs the switch file's fake steps."""

    def restore(self, *args: Any, **kwargs: Any) -> EngineResult:
        call = inspect.signature(CoreEngine.restore).bind(self, *args, **kwargs)
        slow_steps(call.arguments["progress"])
        return super().restore(*args, **kwargs)


context.set_factory(lambda: context.WorkerContext.build(engine=SlowEngine(), notify=queue_webhook))
