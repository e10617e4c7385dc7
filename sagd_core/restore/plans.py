"""Sampling schedules for restoration (issue "every sampler and ``sagd restore`` accept a fitted
schedule"; SAGD.md §4–5).

A restoration request names the ᾱ levels its chains visit (:class:`RestoreSchedule`):

- ``model``: the model's own training schedule, ``schedule.plan(N)`` (leading spacing; default);
- ``linear`` / ``cosine``: the heuristic N-step grids of :mod:`.heuristics` (model times
  interpolated on the model's training schedule);
- ``fit``: the grid fitted to the model's own data spectrum and forward noise for N steps
  (:mod:`.for_model`, cached per process), for the ancestral sampler restoration uses (η = 1,
  i.e. the ``ddpm`` transfer functions), at the size the chains run at. For a band model (role
  ``band``: the SAGD fill) the plan is designed for the chain the fill actually runs
  (:mod:`.fill_plan`): the levels from the top to the posterior-mean read level ``ᾱ = 0.1`` are
  fitted for that truncated chain on the in-band frequencies, with as many network calls as the
  model's own N-step plan makes up to its read; the levels above stay the model's own;

For band models, ``read_alpha_bar`` (any kind) moves the posterior-mean read above the cut
``ᾱ = 0.1``: the plan keeps its levels below the cut, then the read level, then its levels above
it (:func:`.fill_plan.move_read`). This is an estimator setting carried by the plan (see
:mod:`.fill_plan`); the other roles' plans ignore it.
- ``grid``: an explicit decreasing grid ``ᾱ_1 > … > ᾱ_N`` and ``ᾱ_0`` (a ``sagd schedule fit``
  document, :meth:`RestoreSchedule.from_fitted`).

Restoration chains do not all start at the top: the trusted-band denoiser starts at the time
``t*`` where the model's noise matches the declared input noise. A designed N-level grid is then
*cut*: the chain starts at ``ᾱ(t*)`` and visits the grid's levels above it (less noise), so it
runs fewer than N steps; the model's own schedule keeps spreading N steps over ``[0, t*]`` as
before. Chains read out early for the posterior mean (:func:`sagd_core.restore.methods.chains.
truncate_for_mean`) are truncated after the plan is built, whatever the grid.

The plans reach the restoration code through the model: :func:`with_schedule` returns the model
with a :class:`PlannedSchedule`, the same training ᾱ array whose ``plan(N, t_max=…)`` returns the
designed plan (cut at ``t_max``). Everything that asks a model's schedule for a plan (SAGD's fill
and denoiser, DDNM, SDEdit) follows the request without knowing about designed grids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sagd_core.restore.request import RESTORE_SAMPLER, RestoreSchedule
from sagd_core.schedule_design.fitted import ScheduleFitError
from sagd_core.schedule_design.plans import heuristic_plan, plan_from_grid
from sagd_core.schedules import SamplingPlan, Schedule, Spacing

if TYPE_CHECKING:
    from sagd_core.training.checkpoints import TrainedModel


def cut_plan(plan: SamplingPlan, alpha_bar_start: float, time_start: float) -> SamplingPlan:
    """``plan`` started at ``ᾱ_start``: the start level, then the levels with more ᾱ (less
    noise) than it; the end (``final_alpha_bar``) is kept."""
    keep = plan.alpha_bars > alpha_bar_start * (1.0 + 1e-9)
    return SamplingPlan(
        timesteps=np.concatenate([[float(time_start)], plan.timesteps[keep]]),
        alpha_bars=np.concatenate([[float(alpha_bar_start)], plan.alpha_bars[keep]]),
        final_alpha_bar=plan.final_alpha_bar,
    )


@dataclass(frozen=True, eq=False)
class PlannedSchedule(Schedule):
    """A model's training schedule (the same ``alpha_bars``) whose sampling plans come from a
    designed grid: ``plans(N)`` gives the full N-step plan; ``t_max`` cuts it (:func:`cut_plan`)."""

    plans: Callable[[int], SamplingPlan] | None = field(default=None, repr=False)
    label: str = ""

    def plan(
        self, num_steps: int, *, spacing: Spacing = "leading", t_max: int | None = None
    ) -> SamplingPlan:
        if self.plans is None:  # pragma: no cover - always set by with_schedule
            return super().plan(num_steps, spacing=spacing, t_max=t_max)
        full = self.plans(num_steps)
        if t_max is None:
            return full
        if not 0 <= t_max < self.num_train_timesteps:
            raise ValueError(f"t_max must be in [0, {self.num_train_timesteps - 1}]")
        return cut_plan(full, float(self.alpha_bars[t_max]), float(t_max))


def plan_source(
    model: TrainedModel, choice: RestoreSchedule, *, height: int, width: int
) -> Callable[[int], SamplingPlan] | None:
    """``N → plan`` for ``choice`` on ``model`` (None for the model's own schedule)."""
    read = choice.read_alpha_bar if model.config.role == "band" else None
    if read is not None and choice.kind != "fit":
        from sagd_core.planning.fill import check_read, move_read

        check_read(read)
        base = _base_source(model, choice, height=height, width=width)
        schedule = model.schedule
        plans = base if base is not None else schedule.plan
        return lambda n: move_read(plans(n), read, schedule)
    return _base_source(model, choice, height=height, width=width)


def _base_source(
    model: TrainedModel, choice: RestoreSchedule, *, height: int, width: int
) -> Callable[[int], SamplingPlan] | None:
    schedule = model.schedule
    if choice.kind == "model":
        return None
    if choice.kind in ("linear", "cosine"):
        name = choice.kind
        return lambda n: heuristic_plan(name, n, schedule)
    if choice.kind == "grid":
        grid = np.asarray(choice.alpha_bars, dtype=np.float64)
        final = choice.final_alpha_bar

        def from_grid(n: int) -> SamplingPlan:
            if n != grid.size:
                raise ScheduleFitError(f"the schedule grid has {grid.size} levels, not {n}")
            return plan_from_grid(grid, schedule, final_alpha_bar=final)

        return from_grid
    loss = choice.loss
    if model.config.role == "band":
        from sagd_core.planning.fill import fill_plan_for_model

        read = choice.read_alpha_bar
        return lambda n: fill_plan_for_model(
            model, n, loss=loss, height=height, width=width, read_alpha_bar=read
        )
    from sagd_core.planning.for_model import fitted_plan_for_model

    return lambda n: fitted_plan_for_model(
        model, n, sampler=RESTORE_SAMPLER, loss=loss, height=height, width=width
    )


def with_schedule(
    model: TrainedModel, choice: RestoreSchedule, *, height: int, width: int
) -> TrainedModel:
    """``model`` whose ``schedule.plan`` follows ``choice`` (itself for ``model``); ``height ×
    width`` is the size the chains run at (a tile), which a ``fit`` is made for."""
    source = plan_source(model, choice, height=height, width=width)
    if source is None:
        return model
    base = model.schedule
    planned = PlannedSchedule(
        name=base.name,
        alpha_bars=base.alpha_bars,
        params=dict(base.params),
        plans=source,
        label=choice.kind,
    )
    return replace(model, schedule=planned)


def with_read_level(model: TrainedModel, read_alpha_bar: float) -> TrainedModel:
    """A band ``model`` whose own plans are read at ``read_alpha_bar`` (:func:`.fill_plan.
    move_read`); for benchmarks: ``restore()`` applies only designed schedules."""
    from sagd_core.planning.fill import check_read, move_read

    check_read(read_alpha_bar)
    base = model.schedule
    planned = PlannedSchedule(
        name=base.name,
        alpha_bars=base.alpha_bars,
        params=dict(base.params),
        plans=lambda n: move_read(base.plan(n), read_alpha_bar, base),
        label="model",
    )
    return replace(model, schedule=planned)


def plan_summary(plan: SamplingPlan) -> dict[str, Any]:
    """The levels a plan visits, for reports (ᾱ rounded to 6 significant digits)."""
    return {
        "steps": len(plan),
        "alpha_bars": [float(f"{a:.6g}") for a in plan.alpha_bars],
        "final_alpha_bar": float(plan.final_alpha_bar),
    }


__all__ = [
    "PlannedSchedule",
    "cut_plan",
    "plan_source",
    "plan_summary",
    "with_read_level",
    "with_schedule",
]
