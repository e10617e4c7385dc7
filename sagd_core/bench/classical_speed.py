"""Seconds of the classical tier on one core (``sagd bench speed``), against the classical-tier
issue's targets: the sinusoid and stripe paths ≤ 0.5 s per 512² RGB image, the noise path ≤ 1 s.

The scene is the real-size benchmark's first RGB dead-leaves scene of the test split, corrupted
as there (:func:`sagd_core.bench.real.corrupt`), for each kind and broadband noise level. Each
:func:`~sagd_core.restore.engine.restore` call (the whole call: image preparation, masks, the
estimators, the self-checks and the report) runs once to warm up, then ``repeats`` times; the
best wall time and the process CPU time of that run are reported. The caller pins the process
to one core and numpy's BLAS to one thread (:func:`pin_one_core`), so the CPU time is the work
done and the wall time is what one core gives; on a shared machine the CPU time is the steadier
figure.

Which path each kind takes: periodic interference and halftone screens are sinusoid fits
(halftone with its multiplicative screen divided out), stripes the profile estimator, band noise
the noise path (the Wiener filter and the patch-DCT shrinkage under SURE).

Budgets per case (:func:`budget`): the path's budget; with broadband noise declared (σ > 0) the
broadband denoiser, which is the noise path, runs after the band treatment, so the sinusoid and
stripe paths get their budget plus the noise path's (0.5 + 1.0 s), while band noise, already
the noise path, keeps its 1.0 s. The table states each row's budget so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from sagd_core.bench.real import KINDS, SIGMAS, corrupt, scenes
from sagd_core.restore.engine import restore
from sagd_core.restore.request import RestoreRequest

#: The issue's per-image budgets (seconds, 512² RGB, one core) by the path each kind takes.
BUDGETS = {"periodic": 0.5, "halftone": 0.5, "stripes": 0.5, "band_noise": 1.0}
#: The kind whose path is the noise path (the broadband denoiser run after the others).
NOISE_PATH = "band_noise"


def budget_terms(kind: str, sigma: float) -> tuple[float, ...]:
    """The budgets that add up to one case's: the path's, and the noise path's when broadband
    noise is declared (``sigma > 0``) and the path is not the noise path itself."""
    if sigma > 0 and kind != NOISE_PATH:
        return (BUDGETS[kind], BUDGETS[NOISE_PATH])
    return (BUDGETS[kind],)


def budget(kind: str, sigma: float) -> float:
    """One case's budget (seconds, 512² RGB, one core): the sum of :func:`budget_terms`."""
    return sum(budget_terms(kind, sigma))


def pin_one_core(core: int | None = None) -> str:
    """Pin this process to one CPU (``core``, default the last one it may run on) and numpy's
    BLAS to one thread; returns what was done, for the environment line."""
    said = []
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        chosen = allowed[-1] if core is None else core
        os.sched_setaffinity(0, {chosen})
        said.append(f"pinned to CPU {chosen}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of scikit-learn
        said.append("BLAS threads not limited (threadpoolctl missing)")
    else:
        threadpool_limits(1)
        said.append("BLAS limited to 1 thread")
    return ", ".join(said)


def time_classical(
    size: int = 512,
    *,
    channels: int = 3,
    kinds: Iterable[str] = KINDS,
    sigmas: Iterable[float] = SIGMAS,
    repeats: int = 3,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """One row per kind, noise level and method (``notch``, ``classical``): the best wall time,
    that run's CPU time, the budget and whether it was met (classical rows at 512² RGB only;
    else None)."""
    scene = next(
        s for s in scenes((size,)) if s.channels == channels and s.name.startswith("leaves")
    )
    judged = (size, channels) == (512, 3)  # the budgets are for 512² RGB
    rows = []
    for kind in kinds:
        for sigma in sigmas:
            y, spec = corrupt(scene, kind, sigma, seed)
            for method in ("notch", "classical"):
                request = RestoreRequest(band=spec, method=method, input_noise_std=2.0 * sigma)
                restore(y, request)  # warm-up: caches, lazy imports
                best = (float("inf"), 0.0)
                for _ in range(repeats):
                    wall, cpu = time.perf_counter(), time.process_time()
                    restore(y, request)
                    run = (time.perf_counter() - wall, time.process_time() - cpu)
                    best = min(best, run)
                limit = budget(kind, sigma) if judged and method == "classical" else None
                rows.append(
                    {
                        "scene": scene.name,
                        "kind": kind,
                        "sigma": sigma,
                        "method": method,
                        "wall_s": best[0],
                        "cpu_s": best[1],
                        "budget_s": limit,
                        "met": None if limit is None else best[0] <= limit,
                    }
                )
    return rows


def budget_cell(kind: str, sigma: float, budget_s: float | None) -> str:
    """The table's budget of one row: the total, and how it adds up when it is a sum
    (``1.5 = 0.5 + 1 (noise path)``); ``–`` without a budget."""
    if budget_s is None:
        return "–"
    terms = budget_terms(kind, sigma)
    if len(terms) == 1:
        return f"{budget_s:g}"
    return f"{budget_s:g} = {terms[0]:g} + {terms[1]:g} (noise path)"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| kind | σ | notch s | classical s (CPU s) | budget s | met |",
        "|---|---|---|---|---|---|",
    ]
    notch = {(r["kind"], r["sigma"]): r["wall_s"] for r in rows if r["method"] == "notch"}
    for r in rows:
        if r["method"] != "classical":
            continue
        lines.append(
            f"| {r['kind']} | {r['sigma']:g} | {notch[(r['kind'], r['sigma'])]:.3f} | "
            f"{r['wall_s']:.3f} ({r['cpu_s']:.3f}) | "
            f"{budget_cell(r['kind'], r['sigma'], r['budget_s'])} | "
            f"{'–' if r['met'] is None else 'yes' if r['met'] else 'NO'} |"
        )
    return "\n".join(lines)


__all__ = [
    "BUDGETS",
    "NOISE_PATH",
    "budget",
    "budget_cell",
    "budget_terms",
    "markdown",
    "pin_one_core",
    "time_classical",
]
