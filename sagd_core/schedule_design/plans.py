"""Turn ᾱ grids (fitted or heuristic) into :class:`~sagd_core.schedules.SamplingPlan` objects.

Two conventions meet here (DESIGN.md §5):

- schedule design: ``alpha_bars`` *decreasing* ``ᾱ_1 > … > ᾱ_N`` plus ``final_alpha_bar = ᾱ_0``;
- samplers: a :class:`SamplingPlan` whose ``alpha_bars`` *increase* along the plan (ᾱ_N first),
  with the model time of each level and the same ``final_alpha_bar``.

Model times of a fitted grid are interpolated in log-SNR on the model's training schedule
(:meth:`Schedule.time_for_alpha_bar`); outside the training range they are clamped, so the network
would be asked about a noise level it never saw — that is logged as a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sagd_core.schedule_design.fitted import FittedSchedule, ScheduleFitError
from sagd_core.schedule_design.heuristics import HEURISTICS
from sagd_core.schedules import SamplingPlan, Schedule

logger = logging.getLogger(__name__)

_MAX_FILE_BYTES = 10_000_000
# Relative slack when checking a grid against the training range (float round trips).
_RANGE_SLACK = 1e-9
_warned: set[tuple[int, int, float, float]] = set()


def plan_from_grid(
    alpha_bars: np.ndarray, schedule: Schedule, *, final_alpha_bar: float = 1.0
) -> SamplingPlan:
    """A sampling plan visiting the decreasing grid ``alpha_bars`` (ᾱ_1 … ᾱ_N) on ``schedule``."""
    ab = np.asarray(alpha_bars, dtype=np.float64)
    lo, hi = float(schedule.alpha_bars[-1]), float(schedule.alpha_bars[0])
    outside = (ab < lo * (1 - _RANGE_SLACK)) | (ab > hi * (1 + _RANGE_SLACK))
    if np.any(outside):
        # Once per grid shape and range: a batch restoration builds the same plan per image.
        key = (int(outside.sum()), ab.size, lo, hi)
        level = logging.DEBUG if key in _warned else logging.WARNING
        _warned.add(key)
        logger.log(
            level,
            "%d of %d ᾱ levels lie outside the schedule's training range [%.3g, %.6g]; "
            "their model times are clamped",
            int(outside.sum()),
            ab.size,
            lo,
            hi,
        )
    try:
        return schedule.plan_from_alpha_bars(ab, final_alpha_bar=final_alpha_bar)
    except ValueError as exc:
        raise ScheduleFitError(f"cannot build a sampling plan from the grid: {exc}") from exc


def plan_for_fitted(fitted: FittedSchedule, schedule: Schedule) -> SamplingPlan:
    """The sampling plan of a fitted schedule for a model trained with ``schedule``."""
    return plan_from_grid(fitted.alpha_bars, schedule, final_alpha_bar=fitted.final_alpha_bar)


def grid_from_plan(plan: SamplingPlan) -> tuple[np.ndarray, float]:
    """``(alpha_bars, final_alpha_bar)`` in the schedule-design convention (decreasing grid)."""
    return plan.alpha_bars[::-1].copy(), float(plan.final_alpha_bar)


def heuristic_plan(name: str, num_steps: int, schedule: Schedule) -> SamplingPlan:
    """The N-step ``linear`` or ``cosine`` grid (leading spacing, T of ``schedule``) as a plan.

    For the schedule a model was trained with, ``schedule.plan(N)`` is the usual choice; this
    gives the *other* heuristics on the same model (e.g. cosine levels on a linear-trained model).
    """
    if name not in HEURISTICS:
        raise ScheduleFitError(f"unknown heuristic grid {name!r}; use one of {sorted(HEURISTICS)}")
    grid = HEURISTICS[name](num_steps, schedule.num_train_timesteps)
    return plan_from_grid(grid, schedule)


def load_fitted_schedule(path: Path | str) -> FittedSchedule:
    """Read a ``sagd.fitted_schedule`` JSON document (``sagd schedule fit -o …``)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise ScheduleFitError(f"{path}: {size} bytes is too large for a fitted schedule")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleFitError(f"cannot read fitted schedule {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ScheduleFitError(f"{path} is not UTF-8 text") from exc
    try:
        return FittedSchedule.from_json(text)
    except ScheduleFitError as exc:
        raise ScheduleFitError(f"{path}: {exc}") from exc


def load_fitted_plan(path: Path | str, schedule: Schedule) -> SamplingPlan:
    """Load a fitted schedule file and return the plan the samplers take for a model trained
    with ``schedule`` (``sample_ddim(model, plan, …)``).

    Raises :class:`ScheduleFitError` (a ``ValueError``) for unreadable or malformed files.
    """
    return plan_for_fitted(load_fitted_schedule(path), schedule)
