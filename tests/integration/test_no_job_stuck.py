"""No job stuck after a Redis or worker failure, with real processes (``tests/harness.py``).

* Redis SIGKILLed while a job runs and five wait (AOF on), and started again 12 s later (longer
  than the Redis client's own retries and than the lease): the running job goes on without its
  progress reports and stores its result once Redis is back (its final write is retried; the
  reaper may requeue it meanwhile, and the requeued task then finds it final), the queued ones
  run; every job final, one final transition each, the same worker throughout.
* The whole worker SIGKILLed (main process and pool) mid-job: nobody requeues its task message
  (it stays unacknowledged until the visibility timeout, hours), but the job's lease runs out and
  the reaper of the replacement worker requeues it; it runs again and succeeds (attempt 2).

Leases are short here (``SAGD_JOB_LEASE_S``) so that a lost worker is found in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import redis_kill_trial, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LEASE_S = "3"


def test_redis_sigkilled_during_a_running_job_every_job_ends_final_once(tmp_path: Path) -> None:
    with start_stack(
        tmp_path,
        appendonly=True,
        rate_limits=False,
        name="redis-kill",
        SAGD_JOB_LEASE_S=LEASE_S,
    ) as stack:
        worker_pid = stack.worker.pid
        outcome = redis_kill_trial(stack, queued=5, down_s=12)
        assert outcome["stuck"] == 0, (outcome, stack.worker.tail())
        assert outcome["states"] == ["succeeded"] * 6, (outcome, stack.worker.tail())
        assert outcome["duplicates"] == 0 and outcome["results_200"] == 6
        assert stack.worker.alive and stack.worker.pid == worker_pid  # never restarted
        assert "progress not recorded" in stack.worker.tail(2000)  # it ran on, cut off


def test_a_worker_killed_hard_mid_job_has_its_job_requeued_by_the_lease(tmp_path: Path) -> None:
    with start_stack(tmp_path, name="hard-kill", SAGD_JOB_LEASE_S=LEASE_S) as stack:
        stack.slow(60)  # 3 s of fake steps
        job = stack.submit()
        stack.wait_running(job, step=5)
        stack.kill_worker_hard()
        assert stack.client.get(f"/v1/jobs/{job}").json()["state"] == "running"  # as left
        replacement = stack.replace_worker()
        body = stack.wait_done(job, timeout_s=120)
        assert body["state"] == "succeeded", (body, replacement.tail())
        assert body["attempts"] == 2  # the killed attempt and the requeued one
        assert stack.client.get(f"/v1/jobs/{job}/result").status_code == 200
        assert stack.finished_counts() == {"restore|succeeded": 1}  # one final state
        assert "reaper: 1 running jobs had lost their worker" in replacement.tail(200)
