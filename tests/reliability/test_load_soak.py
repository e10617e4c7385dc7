"""Load and soak on loopback with bounded loops (real Redis, worker and uvicorn processes).

Short versions: 50 simultaneous uploads (0 errors; the accept latency is printed, not asserted,
since the machine running the tests may be busy), and 100 jobs on one worker with its memory
sampled after every wave of 10. ``bench_reliability`` runs the 1,000-job soak.
"""

from __future__ import annotations

import json

import pytest

from tests.harness import Stack
from tests.reliability.tools import MiB, load_trial, rss_at, soak

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_fifty_concurrent_uploads_all_accepted_and_done(process_stack: Stack) -> None:
    outcome = load_trial(process_stack, 50)
    print("load:", json.dumps(outcome))
    assert outcome["errors"] == 0
    assert outcome["jobs_succeeded"] == 50


def test_hundred_jobs_on_one_worker_without_memory_growth(process_stack: Stack) -> None:
    outcome = soak(process_stack, 100, wave=10, log=print)
    samples = outcome["samples"]
    print("soak:", json.dumps({k: v for k, v in outcome.items() if k != "samples"}))
    print("soak RSS MiB:", [(n, round(rss / MiB, 1)) for n, rss in samples])
    assert outcome["states"] == {"succeeded": 100}
    assert len(outcome["pool_pids"]) == 1  # one process ran them all (no recycling hides growth)
    growth = rss_at(samples, 100) - rss_at(samples, 30)
    assert growth < 20 * MiB, f"worker RSS grew {growth / MiB:.1f} MiB from job 30 to 100"
    middle = [rss for n, rss in samples if 40 <= n <= 70]
    last = [rss for n, rss in samples if n > 70]
    assert sum(last) / len(last) - sum(middle) / len(middle) < 10 * MiB
