"""Sampling schedules for restoration (issue "every sampler and ``sagd restore`` accept a fitted
schedule"; DESIGN.md §4–5).

A restoration request names the ᾱ levels its chains visit (:class:`RestoreSchedule`):

- ``model``: the model's own training schedule, ``schedule.plan(N)`` (leading spacing; default);
- ``linear`` / ``cosine``: the heuristic N-step grids of
  :mod:`sagd_core.schedule_design.heuristics` (model times interpolated on the model's training
  schedule);
- ``fit``: the grid fitted to the model's own data spectrum and forward noise for N steps
  (:mod:`sagd_core.planning.for_model`, cached per process), for the ancestral sampler
  restoration uses (η = 1, i.e. the ``ddpm`` transfer functions), at the size the chains run at.
  For a band model (role ``band``: the SAGD fill) the plan is designed for the chain the fill
  actually runs (:mod:`sagd_core.planning.fill`): the levels from the top to the posterior-mean
  read level ``ᾱ = 0.1`` are fitted for that truncated chain on the in-band frequencies, with as
  many network calls as the model's own N-step plan makes up to its read; the levels above stay
  the model's own;
- ``grid``: an explicit decreasing grid ``ᾱ_1 > … > ᾱ_N`` and ``ᾱ_0`` (a ``sagd schedule fit``
  document, :meth:`RestoreSchedule.from_fitted`).

For band models, ``read_alpha_bar`` (any kind, the model's own schedule included) moves the
posterior-mean read above the cut ``ᾱ = 0.1``: the plan keeps its levels below the cut, then the
read level, then its levels above it (:meth:`SamplingPlan.read_at
<sagd_core.schedules.SamplingPlan.read_at>`). This is an estimator setting carried by the plan
(see :mod:`sagd_core.planning.fill`); the other roles' plans ignore it.

Restoration chains do not all start at the top: the trusted-band denoiser starts at the time
``t*`` where the model's noise matches the declared input noise
(:meth:`SamplingPlan.started_at`). A designed N-level grid is then *cut*: the chain starts at
``ᾱ(t*)`` and visits the grid's levels above it (less noise), so it runs fewer than N steps; the
model's own schedule keeps spreading N steps over ``[0, t*]`` as before. Chains read out early
for the posterior mean (:meth:`SamplingPlan.truncated`) are truncated after the plan is built,
whatever the grid.

The plans reach the restoration methods explicitly: :func:`resolve_plans` builds one N-step plan
per model role of a restoration (before any work, so a schedule that cannot be fitted fails
early), and the engine passes them to the method, which cuts them with the
:class:`~sagd_core.schedules.SamplingPlan` methods only. A model's training schedule is never
replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sagd_core.planning.fill import check_read, fill_plan_for_model
from sagd_core.planning.for_model import fitted_plan_for_model
from sagd_core.restore.errors import RestoreError
from sagd_core.restore.models import LoadedModel, ModelSet, RolePlans
from sagd_core.restore.request import (
    MODEL_FREE_METHODS,
    RESTORE_SAMPLER,
    RestoreRequest,
    RestoreSchedule,
)
from sagd_core.schedule_design.fitted import ScheduleFitError
from sagd_core.schedule_design.plans import heuristic_plan, plan_from_grid
from sagd_core.schedules import SamplingPlan

#: ``N → the N-step plan`` of one model under one schedule choice.
PlanSource = Callable[[int], SamplingPlan]


def plan_source(
    model: LoadedModel, choice: RestoreSchedule, *, height: int, width: int
) -> PlanSource:
    """``N → plan`` for ``choice`` on ``model`` at the chains' size ``height × width`` (a tile,
    which a ``fit`` is made for). A band model's read level (``choice.read_alpha_bar``) is in
    its plans; a read below the cut raises :class:`ScheduleFitError` here."""
    read = choice.read_alpha_bar if model.config.role == "band" else None
    base = _base_source(model, choice, height=height, width=width)
    if read is not None and choice.kind != "fit":  # a band model's fit places the read itself
        check_read(read)
        return lambda n: base(n).read_at(read)
    return base


def _base_source(
    model: LoadedModel, choice: RestoreSchedule, *, height: int, width: int
) -> PlanSource:
    schedule = model.schedule
    if choice.kind == "model":
        return schedule.plan
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
        read = choice.read_alpha_bar
        return lambda n: fill_plan_for_model(
            model, n, loss=loss, height=height, width=width, read_alpha_bar=read
        )
    return lambda n: fitted_plan_for_model(
        model, n, sampler=RESTORE_SAMPLER, loss=loss, height=height, width=width
    )


def resolve_plans(
    models: ModelSet, request: RestoreRequest, size: tuple[int, int]
) -> tuple[RolePlans, dict[str, Any] | None]:
    """The ``request.steps``-step plan of every model role present under the request's
    schedule, and the schedule's report entry (None for the models' own schedules with no read
    level). ``size`` is the size the chains run at (a tile). Nothing for the model-free
    methods. A schedule that cannot be built for a model raises :class:`RestoreError`."""
    if request.method in MODEL_FREE_METHODS:
        return {}, None
    choice = request.schedule
    h, w = size
    plans: dict[str, SamplingPlan] = {}
    for role in models.roles():
        model: LoadedModel = getattr(models, role)
        try:
            plans[role] = plan_source(model, choice, height=h, width=w)(request.steps)
        except (ScheduleFitError, OSError) as exc:  # bad grid, spectrum or training data
            raise RestoreError(
                f"schedule {choice.kind!r} unusable for the {role} model: {exc}"
            ) from exc
    if choice.kind == "model" and choice.read_alpha_bar is None:
        return plans, None
    report = {
        "kind": choice.kind,
        "description": choice.describe(),
        "steps": request.steps,
        "plans": {role: plan.summary() for role, plan in plans.items()},
    }
    return plans, report


__all__ = ["PlanSource", "plan_source", "resolve_plans"]
