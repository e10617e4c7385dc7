"""Durability benchmark (issue #20): ``python benchmarks/reliability_durability.py``.

Two sections, each in real processes under a temporary directory:

1. **Stop/start cycles** (``--cycles``, target 5) of ``python -m service.embedded`` (``make
   serve``) on one data folder. Each cycle starts it, checks every job of the earlier cycles (its
   record readable, a finished job's result readable, the jobs left queued by the last stop
   finished), submits ``--finished`` jobs (20) and waits for them, submits ``--queued`` more (5,
   1024² images) and stops it at once with Ctrl-C, those jobs still queued. One more start checks
   the last cycle's jobs. Target: 100 % of records and results readable, the queued jobs finished.
2. **Redis SIGKILL trials** (``--trials``, target 10) on a stack of the test harness (Redis with
   AOF, one worker of ``tests.worker_app``, the API in this process): a job running (its fake
   steps end while Redis is down) and 5 queued; Redis SIGKILLed and started again
   ``--down-s`` later on the same port and directory (``tests.harness.redis_kill_trial``).
   Target: in every trial every job final within 60 s of Redis being back, 0 stuck, 0 duplicate
   results.

The environment is printed first, then one JSON line per section and a PASS/MISS line per target.
``bench_reliability.py --only durability`` runs the same through :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the helpers live with the tests (tests/harness.py)
    sys.path.insert(0, str(REPO))

from tests.harness import (  # noqa: E402
    BAND_JSON,
    TERMINAL,
    environment,
    noise_png,
    redis_kill_trial,
    start_embedded,
    start_stack,
)

FINAL_WITHIN_S = 60.0
NO_RATE_LIMITS = {"SAGD_RATE_LIMIT_PER_S": "1000000", "SAGD_RATE_LIMIT_BURST": "1000000"}
Log = Callable[[str], None]


def _submit(client: httpx.Client, side: int, seed: int) -> str:
    response = client.post(
        "/v1/restorations",
        files={"image": ("x.png", noise_png(side, seed=seed), "image/png")},
        data={"band_spec": BAND_JSON, "method": "notch"},
    )
    response.raise_for_status()
    return str(response.json()["id"])


def _states(client: httpx.Client, ids: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for job_id in ids:
        response = client.get(f"/v1/jobs/{job_id}")
        out[job_id] = response.json()["state"] if response.status_code == 200 else None
    return out


def _wait_final(client: httpx.Client, ids: list[str], timeout_s: float) -> dict[str, str | None]:
    deadline = time.monotonic() + timeout_s
    states = _states(client, ids)
    while time.monotonic() < deadline and any(s not in TERMINAL for s in states.values()):
        time.sleep(0.2)
        states = _states(client, ids)
    return states


def stop_start_cycles(
    base: Path, cycles: int, finished: int = 20, queued: int = 5, log: Log = print
) -> dict[str, Any]:
    """The stop/start section (see the module docstring)."""
    storage = base / "storage"
    base.mkdir(parents=True, exist_ok=True)
    done: list[str] = []  # succeeded jobs: record and result must stay readable
    left_queued: list[str] = []  # queued at the last stop: must finish after the next start
    checks: list[dict[str, Any]] = []
    for cycle in range(cycles + 1):
        serve = start_embedded(storage, base / f"serve-{cycle}.log", **NO_RATE_LIMITS)
        try:
            started = time.monotonic()
            serve.wait_ready(timeout_s=300)
            ready_s = time.monotonic() - started
            with httpx.Client(base_url=serve.url, timeout=60) as client:
                after_restart = _wait_final(client, left_queued, timeout_s=300)
                states = _states(client, done)
                results = sum(client.get(f"/v1/jobs/{j}/result").status_code == 200 for j in done)
                check = {
                    "cycle": cycle,
                    "ready_s": round(ready_s, 1),
                    "records_expected": len(done) + len(left_queued),
                    "records_readable": sum(s is not None for s in states.values())
                    + sum(s is not None for s in after_restart.values()),
                    "results_expected": len(done),
                    "results_readable": results,
                    "queued_before_stop": len(left_queued),
                    "queued_finished": sum(s == "succeeded" for s in after_restart.values()),
                }
                checks.append(check)
                log(f"durability cycle {cycle}: {json.dumps(check)}")
                done += [j for j, s in after_restart.items() if s == "succeeded"]
                if cycle == cycles:
                    break
                new = [_submit(client, 64, seed=i) for i in range(finished)]
                final = _wait_final(client, new, timeout_s=300)
                done += [j for j, s in final.items() if s == "succeeded"]
                left_queued = [_submit(client, 1024, seed=i) for i in range(queued)]
                still = sum(s == "queued" for s in _states(client, left_queued).values())
                checks[-1]["queued_at_stop"] = still
            assert serve.ctrl_c(timeout_s=120) == 0, serve.tail()
        finally:
            serve.kill()
    expected = sum(c["records_expected"] for c in checks)
    return {
        "cycles": cycles,
        "jobs_submitted": cycles * (finished + queued),
        "records_readable_pct": round(
            100 * sum(c["records_readable"] for c in checks) / max(1, expected), 2
        ),
        "results_readable_pct": round(
            100
            * sum(c["results_readable"] for c in checks)
            / max(1, sum(c["results_expected"] for c in checks)),
            2,
        ),
        "queued_at_stop": sum(c.get("queued_at_stop", 0) for c in checks),
        "queued_finished_after_restart": sum(c["queued_finished"] for c in checks),
        "queued_expected": sum(c["queued_before_stop"] for c in checks),
        "per_cycle": checks,
    }


def redis_kill_trials(
    base: Path, trials: int, down_s: float = 2.0, lease_s: float = 10.0, log: Log = print
) -> dict[str, Any]:
    """The Redis SIGKILL section (see the module docstring)."""
    outcomes = []
    with start_stack(
        base,
        appendonly=True,
        rate_limits=False,
        name="durability",
        SAGD_JOB_LEASE_S=str(lease_s),
    ) as stack:
        for trial in range(trials):
            outcome = redis_kill_trial(stack, queued=5, down_s=down_s)
            outcomes.append(outcome)
            log(f"redis SIGKILL trial {trial}: {json.dumps(outcome)}")
        same_worker = stack.worker.alive
    ok = [
        o["stuck"] == 0
        and all(s in TERMINAL for s in o["states"])
        and o["final_s_after_redis_back"] <= FINAL_WITHIN_S
        and o["duplicates"] == 0
        and o["results_200"] == o["states"].count("succeeded")
        for o in outcomes
    ]
    return {
        "trials": trials,
        "down_s": down_s,
        "lease_s": lease_s,
        "trials_all_final_in_60s": sum(ok),
        "stuck": sum(o["stuck"] for o in outcomes),
        "duplicates": sum(o["duplicates"] for o in outcomes),
        "succeeded": sum(o["states"].count("succeeded") for o in outcomes),
        "jobs": sum(o["jobs"] for o in outcomes),
        "max_final_s_after_redis_back": max(o["final_s_after_redis_back"] for o in outcomes),
        "worker_never_restarted": same_worker,
    }


def run(cycles: int = 5, trials: int = 10, down_s: float = 2.0, log: Log = print) -> dict[str, Any]:
    """Both sections (``bench_reliability.py`` calls this); ``cycles`` or ``trials`` 0 skips
    one."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sagd-durability-") as scratch:
        if cycles:
            started = time.monotonic()
            out["stop_start"] = stop_start_cycles(Path(scratch) / "serve", cycles, log=log)
            out["stop_start"]["seconds"] = round(time.monotonic() - started)
        if trials:
            started = time.monotonic()
            out["redis_kill"] = redis_kill_trials(
                Path(scratch) / "kill", trials, down_s=down_s, log=log
            )
            out["redis_kill"]["seconds"] = round(time.monotonic() - started)
    return out


def targets(results: dict[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    if "stop_start" in results:
        c = results["stop_start"]
        out[f"{c['cycles']} stop/start cycles: 100% records and results readable"] = (
            c["records_readable_pct"] == 100.0 and c["results_readable_pct"] == 100.0
        )
        out[f"{c['cycles']} stop/start cycles: queued jobs finished after restart"] = (
            c["queued_finished_after_restart"] == c["queued_expected"]
        )
    if "redis_kill" in results:
        k = results["redis_kill"]
        out[f"{k['trials']} Redis SIGKILL trials: all final in 60 s, 0 stuck, 0 duplicates"] = (
            k["trials_all_final_in_60s"] == k["trials"] and k["stuck"] == 0 and k["duplicates"] == 0
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reliability_durability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cycles", type=int, default=5, help="stop/start cycles (0: skip)")
    parser.add_argument("--trials", type=int, default=10, help="Redis SIGKILL trials (0: skip)")
    parser.add_argument("--down-s", type=float, default=2.0, help="seconds Redis stays down")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if not (0 <= args.cycles <= 100 and 0 <= args.trials <= 200 and 0 < args.down_s <= 120):
        parser.error("--cycles 0..100, --trials 0..200, --down-s in (0, 120]")
    results: dict[str, Any] = {"environment": environment(loadavg=True)}
    print(json.dumps(results["environment"]), flush=True)
    results.update(run(args.cycles, args.trials, args.down_s, log=lambda m: print(m, flush=True)))
    for name in ("stop_start", "redis_kill"):
        if name in results:
            summary = {k: v for k, v in results[name].items() if k != "per_cycle"}
            print(f"{name}: {json.dumps(summary)}", flush=True)
    checks = targets(results)
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**results, "targets": checks}, indent=2, default=str))
    return 1 if args.strict and not all(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
