"""Fault injection with real processes: a worker's pool process SIGKILLed mid-job, hard time limit.

The short versions run here (3 kill trials); ``bench_reliability`` runs 20. A Redis restart with
jobs queued is covered by ``tests/integration/test_e2e_redis_restart.py`` (and by the bench, also
with SIGKILL); a Redis SIGKILL with a job running, and a whole worker SIGKILLed (its job found by
its lease), by ``tests/integration/test_no_job_stuck.py``; the soft time limit by
``tests/integration/test_e2e_jobs.py``.
"""

from __future__ import annotations

import json

import pytest

from tests.harness import Stack
from tests.reliability.tools import kill_chunk_trial, kill_trials, time_limit_trial

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TRIALS = 3


def test_sigkill_mid_job_loses_nothing_and_finishes_each_job_once(process_stack: Stack) -> None:
    outcome = kill_trials(process_stack, TRIALS)
    print("kill trials:", json.dumps({k: v for k, v in outcome.items() if k != "job_files"}))
    assert outcome["killed"] >= TRIALS
    assert outcome["succeeded"] == TRIALS and outcome["lost"] == 0
    assert all(a == 2 for a in outcome["attempts"])  # the killed attempt and one more, no loop
    assert outcome["results_200"] == TRIALS
    assert outcome["final_transitions"] == TRIALS  # exactly one final state per job
    for files in outcome["job_files"].values():
        assert files == ["input.png", "report.json", "result.png"]  # no half-written leftovers
    assert outcome["worker_alive"]
    assert process_stack.pool_respawn_timeouts() == 0  # new pool processes were given time to start


def test_sigkill_mid_chunk_redelivers_the_chunk_and_finishes_each_item_once(
    process_stack: Stack,
) -> None:
    """A micro-batched chunk whose pool process dies: the chunk comes back, the item that had
    finished is skipped, the killed one runs again (attempt 2), the rest once."""
    outcome = kill_chunk_trial(process_stack)
    print("chunk kill:", json.dumps(outcome))
    assert outcome["killed"] >= 1
    assert outcome["states"] == ["succeeded"] * 4
    assert outcome["attempts"] == [1, 2, 1, 1]
    assert outcome["final_transitions"] == 4  # exactly one final state per item
    assert outcome["job_files"] == [["input.png", "report.json", "result.png"]] * 4
    assert outcome["worker_alive"]


def test_hard_time_limit_kills_the_job_readably_and_the_next_job_runs(process_stack: Stack) -> None:
    outcome = time_limit_trial(process_stack, stuck=True)
    print("hard time limit:", json.dumps(outcome))
    assert outcome["state"] == "failed"
    assert outcome["error"]["code"] == "time_limit"
    assert "hard time limit" in outcome["error"]["message"]
    assert outcome["pool_process_replaced"]  # the process really was killed
    assert outcome["attempts"] == 1  # not redelivered after the kill
    assert outcome["failed_recorded"] == 1  # counted in the metrics like any failed job
    assert outcome["next_job"] == "succeeded"
    assert outcome["worker_alive"]
    assert process_stack.pool_respawn_timeouts() == 0


def test_new_pool_processes_get_time_to_import_torch() -> None:
    """Celery's default 4 s for a new pool process to report "up" is shorter than importing torch
    and warming the engine up on a busy machine; the pool then kills it and forks again."""
    from service.jobs.celery_config import celery_config
    from service.settings import Settings

    config = celery_config(Settings(_env_file=None))  # type: ignore[call-arg]
    assert config["worker_proc_alive_timeout"] >= 60
