"""Part (b) of ``sagd bench schedule``, restoration: PSNR of SAGD band fills versus N per schedule.

A band model (role ``band``, trained on corrupted images by ``sagd bench restore`` or ``sagd train
--recipe``) fills its band on held-out images of its own data config (the ``test`` split,
corrupted like its training data), through :func:`sagd_core.restore.restore` with
``RestoreRequest(steps=N, schedule=…)``; PSNR is measured against the clean held-out images.
Schedules: ``linear`` / ``cosine`` (the model's own schedule's plan for its own name, else the
heuristic grid) and ``optimized`` (``schedule="fit"``: for a band model the fill chain's levels,
fitted in closed form on the in-band frequencies, :mod:`sagd_core.planning.fill`). The table
also gives the network calls a restoration makes: with the posterior-mean estimator the fill
chain stops at the first level with ``ᾱ ≥ 0.1``, so a grid's calls depend on where it puts its
levels, not only on N. ``read_alpha_bar`` moves that read for every schedule, the model's own
included (``RestoreSchedule.read_alpha_bar``, :meth:`sagd_core.schedules.SamplingPlan.read_at`).

Every held-out image gets its own seed (:func:`image_seed`), the same for every schedule, so the
per-image differences between schedules are paired and their standard error is honest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sagd_core.metrics import band_metrics, psnr
from sagd_core.restore.request import RestoreSchedule, ScheduleKind
from sagd_core.training import TrainedModel
from sagd_core.training.dataset import load_clean_images, load_training_images

logger = logging.getLogger(__name__)

SCHEDULES = ("linear", "cosine", "optimized")
#: PSNR tolerance when asking which N "reaches" a reference quality (dB).
TOLERANCE_DB = 0.1
_SEED_STRIDE = 1_000_003


def held_out(model: TrainedModel, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(clean, corrupted)`` held-out images ``(n, C, H, W)`` of the model's data config."""
    data = model.config.data.model_copy(update={"split": "test", "count": None})
    clean = load_clean_images(data)[:count].astype(np.float64)
    corrupted = load_training_images(data)[:count].astype(np.float64)
    return clean, corrupted


def image_seed(seed: int, index: int) -> int:
    """The request seed of held-out image ``index`` under bench seed ``seed``: every image gets
    its own noise draws (one seed for all images would share one noise pattern, a common
    random effect that averaging over images does not remove), the same for every schedule."""
    return (int(seed) * _SEED_STRIDE + int(index)) % 2**32


def schedule_kind(model: TrainedModel, name: str) -> ScheduleKind:
    """The request's ``schedule`` for a bench schedule name on ``model``."""
    if name == "optimized":
        return "fit"
    if name == model.schedule.name:
        return "model"
    if name in ("linear", "cosine"):
        return "linear" if name == "linear" else "cosine"
    raise ValueError(f"unknown schedule {name!r}; use one of {SCHEDULES}")


@dataclass
class RestoreCurve:
    """``rows[schedule][N] = {"psnr", "psnr_in", "calls", "seconds"}`` for one model."""

    name: str
    estimator: str
    samples: int
    images: int
    seeds: tuple[int, ...]
    rows: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    #: ``per_image[schedule][N]``: PSNR of every (seed, image) pair, in the same order for all.
    per_image: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0

    def paired_delta(self, schedule: str, n: int, ref: str, ref_n: int) -> tuple[float, float]:
        """Mean and standard error of the per-image PSNR difference ``schedule@n − ref@ref_n``
        (same images and seeds: a paired comparison, far less noisy than the two means)."""
        d = self.per_image[schedule][n] - self.per_image[ref][ref_n]
        return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0

    def best_heuristic(self, n: int) -> tuple[str, float]:
        options = {
            s: self.rows[s][n]["psnr"] for s in ("linear", "cosine") if n in self.rows.get(s, {})
        }
        name = max(options, key=lambda k: options[k])
        return name, options[name]

    def steps_to_reach(self, schedule: str, target: float, tol: float = 0.0) -> int | None:
        """Smallest N at which ``schedule``'s PSNR is at least ``target − tol``."""
        hits = [n for n, m in self.rows.get(schedule, {}).items() if m["psnr"] >= target - tol]
        return min(hits) if hits else None


def restore_curve(
    model: TrainedModel,
    name: str,
    steps: dict[str, Sequence[int]],
    *,
    images: int = 32,
    seeds: Sequence[int] = (0,),
    samples: int = 1,
    estimator: str = "mean",
    device: str = "cpu",
    read_alpha_bar: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> RestoreCurve:
    """PSNR of band fills for every schedule in ``steps`` (schedule name → list of N);
    ``read_alpha_bar``: the fill's read level for every schedule (default: the cut)."""
    from sagd_core.restore import ModelSet, RestoreRequest, restore
    from sagd_core.restore.methods.sagd import as_raw_fill

    if model.config.role != "band" or model.config.band is None:
        raise ValueError(
            f"{name}: restoration part needs a band model (role 'band'), got "
            f"role {model.config.role!r}"
        )
    spec = model.config.band
    clean, corrupted = held_out(model, images)
    if len(clean) == 0:
        raise ValueError(f"{name}: the model's data config has no held-out images")
    started = time.perf_counter()
    curve = RestoreCurve(name, estimator, samples, len(clean), tuple(seeds))
    for schedule, ns in steps.items():
        curve.rows[schedule] = {}
        curve.per_image[schedule] = {}
        for n in sorted(set(ns)):
            t0 = time.perf_counter()
            overall, inside, each, calls = [], [], [], 0
            models = ModelSet(band=as_raw_fill(model))  # the fill chain, not the guard's pick
            choice = RestoreSchedule(
                kind=schedule_kind(model, schedule), read_alpha_bar=read_alpha_bar
            )
            for seed in seeds:
                base = RestoreRequest(
                    method="sagd",
                    band=spec,
                    steps=n,
                    seed=0,
                    samples=samples,
                    estimator=estimator,  # type: ignore[arg-type]
                    schedule=choice,
                )
                out = []
                for i, y in enumerate(corrupted):
                    request = base.model_copy(update={"seed": image_seed(seed, i)})
                    res = restore(
                        np.transpose((y + 1.0) / 2.0, (1, 2, 0)), request, models, device=device
                    )
                    arr = res.unclipped if res.unclipped.ndim == 3 else res.unclipped[:, :, None]
                    out.append(np.transpose(2.0 * arr.astype(np.float64) - 1.0, (2, 0, 1)))
                    calls = int(res.report["details"]["fill"]["steps"])
                restored = np.stack(out)
                m = band_metrics(restored, clean, spec)
                overall.append(m.psnr)
                inside.append(m.psnr_in)
                each += [psnr(r[None], c[None]) for r, c in zip(restored, clean, strict=True)]
            curve.rows[schedule][n] = {
                "psnr": float(np.mean(overall)),
                "psnr_in": float(np.mean(inside)),
                "psnr_sd": float(np.std(overall)),
                "calls": float(calls),
                "seconds": time.perf_counter() - t0,
            }
            curve.per_image[schedule][n] = np.asarray(each)
            if progress is not None:
                r = curve.rows[schedule][n]
                progress(
                    f"{name} {estimator} {schedule} N={n}: PSNR {r['psnr']:.3f} dB, "
                    f"{calls} network calls"
                )
    curve.seconds = time.perf_counter() - started
    return curve


def markdown_table(curve: RestoreCurve) -> str:
    """``| N | linear | cosine | optimized |`` cells ``PSNR ± std over seeds (calls)``; best
    PSNR per row bold."""
    schedules = [s for s in SCHEDULES if s in curve.rows]
    all_n = sorted({n for s in schedules for n in curve.rows[s]})
    lines = [
        "| N | " + " | ".join(f"{s} PSNR dB (network calls)" for s in schedules) + " |",
        "|---|" + "---|" * len(schedules),
    ]
    for n in all_n:
        row = {s: curve.rows[s][n] for s in schedules if n in curve.rows[s]}
        best = max(r["psnr"] for r in row.values())
        cells = []
        for s in schedules:
            if s not in row:
                cells.append("")
                continue
            sd = f" ± {row[s]['psnr_sd']:.2f}" if len(curve.seeds) > 1 else ""
            text = f"{row[s]['psnr']:.2f}{sd} ({row[s]['calls']:.0f})"
            cells.append(f"**{text}**" if row[s]["psnr"] == best else text)
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(curve: RestoreCurve, reference_steps: int = 50) -> list[str]:
    """Which N reaches the best heuristic's quality at ``reference_steps``, per schedule: the
    smallest N whose paired PSNR difference to it is at least ``−TOLERANCE_DB`` (mean), with
    every difference ± its standard error."""
    if not any(reference_steps in curve.rows.get(s, {}) for s in ("linear", "cosine")):
        return []
    best, value = curve.best_heuristic(reference_steps)
    out = []
    for schedule in SCHEDULES:
        if schedule not in curve.rows:
            continue
        deltas = {
            n: curve.paired_delta(schedule, n, best, reference_steps)
            for n in sorted(curve.rows[schedule])
        }
        close = [n for n, (d, _) in deltas.items() if d >= -TOLERANCE_DB]
        shown = (
            f"within {TOLERANCE_DB} dB from N = {min(close)}"
            if close
            else f"not within {TOLERANCE_DB} dB at any tested N"
        )
        listed = ", ".join(
            f"N={n} ({curve.rows[schedule][n]['calls']:.0f} calls) {d:+.2f} ± {se:.2f}"
            for n, (d, se) in deltas.items()
        )
        out.append(f"- {schedule}: {shown}; paired Δ dB: {listed}")
    head = (
        f"Best heuristic at N = {reference_steps}: {best}, {value:.2f} dB "
        f"({curve.rows[best][reference_steps]['calls']:.0f} network calls); Δ = paired "
        f"per-image PSNR difference to it ± standard error "
        f"({len(curve.per_image[best][reference_steps])} image × seed pairs)."
    )
    return [head, *out]


__all__ = [
    "SCHEDULES",
    "TOLERANCE_DB",
    "RestoreCurve",
    "held_out",
    "image_seed",
    "markdown_table",
    "restore_curve",
    "schedule_kind",
    "verdicts",
]
