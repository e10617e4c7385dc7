"""The ``fit`` restoration plan of a band model: designed for the fill chain (DESIGN.md §4.3, §5).

With the ``mean`` estimator the band fill runs from the top of the plan up to the first level
with ``ᾱ ≥ 0.1`` (the *cut*, :meth:`sagd_core.schedules.SamplingPlan.truncated`) and reads
``x̂₀`` there; a grid fitted for generation over the whole range keeps one or two levels there.
So the N-step plan of a band model is built in two parts:

- **head** (what the posterior-mean chain visits): ``K`` levels, ``K − 1`` of them below the cut
  and fitted for the truncated chain on the in-band frequencies (:mod:`.truncated`), then the
  read level, by default where the model's own N-step plan reads (its first level ``≥ 0.1``);
  ``K`` is the number of network calls the model's own plan makes up to its read. So a ``fit``
  restoration costs the same calls as the model's own schedule at the same N and reads at the
  same level: the two differ only in where the chain's steps go;
- **tail** (only the ``sample`` estimator goes on): the model's own plan's levels above the read,
  so the plan has N levels in all (fewer when the read is placed above some of them).

A read level above the cut (``read_alpha_bar``, :meth:`SamplingPlan.read_at
<sagd_core.schedules.SamplingPlan.read_at>` for any plan) leaves no level between the cut and the
read, so the chain jumps from below the cut to the read level and reads there. That changes the
estimator, not only the schedule: in the exact Gaussian model the corrected read
(``band_prior.clean_tweedie``) hardly depends on where it is taken, but a trained network's ε
error is amplified by ``√((1−ᾱ)/ᾱ)`` into ``x̂₀``, so a later read can be much better
(measure with ``sagd bench schedule --restore-read-alpha-bar``).

Fits are cached per process by model identity, calls, loss, read level and tile size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from sagd_core.planning.for_model import model_key, model_spectrum
from sagd_core.schedule_design.fitted import ScheduleFitError
from sagd_core.schedule_design.losses import LossName
from sagd_core.schedule_design.truncated import (
    StartMean,
    TruncatedChainProblem,
    TruncatedFit,
    fit_truncated_chain,
)
from sagd_core.schedules import MEAN_ALPHA_BAR, SamplingPlan
from sagd_core.spectral.weights import noise_weights

if TYPE_CHECKING:
    from sagd_core.training import TrainedModel

_MAX_CACHED = 256
_lock = threading.Lock()
_fits: OrderedDict[tuple[object, ...], TruncatedFit] = OrderedDict()


def clear_cache() -> None:
    with _lock:
        _fits.clear()


def read_level() -> float:
    """Where the posterior-mean fill reads ``x̂₀`` (the restoration code's constant)."""
    return float(MEAN_ALPHA_BAR)


def fill_problem(
    model: TrainedModel,
    *,
    loss: LossName,
    height: int,
    width: int,
    stop: float,
    start_mean: StartMean = "band",
) -> TruncatedChainProblem:
    """The in-band Gaussian problem of ``model``'s fill chain at ``height × width``, read at
    ``stop``."""
    spectrum = model_spectrum(model).resized(height, width)
    w = noise_weights(model.config.noise, height, width)
    return TruncatedChainProblem.build(
        spectrum.whiten(w), w**2, stop=stop, loss=loss, start_mean=start_mean
    )


def check_read(read_alpha_bar: float | None) -> tuple[float, float]:
    """``(cut, read)``: the restoration code's cut level and the read level (the cut when
    ``read_alpha_bar`` is None); a read below the cut is impossible (the chain stops there)."""
    cut = read_level()
    read = cut if read_alpha_bar is None else float(read_alpha_bar)
    if not cut <= read < 1:
        raise ScheduleFitError(f"the read level must lie in [{cut}, 1), got {read}")
    return cut, read


def fitted_fill_chain(
    model: TrainedModel,
    calls: int,
    *,
    loss: LossName = "w2",
    height: int,
    width: int,
    init: np.ndarray | None = None,
    read_alpha_bar: float | None = None,
) -> TruncatedFit:
    """The fitted ``calls``-level fill chain of ``model`` (cached): levels below the cut, then
    the read at ``read_alpha_bar`` (default: at the cut)."""
    cut, read = check_read(read_alpha_bar)
    start = None if init is None else tuple(float(a) for a in init)
    key = (model_key(model), int(calls), loss, int(height), int(width), cut, read, start)
    with _lock:
        cached = _fits.get(key)
    if cached is not None:
        return cached
    problem = fill_problem(model, loss=loss, height=height, width=width, stop=read)
    fit = fit_truncated_chain(
        problem, calls, alpha_bar_min=float(model.schedule.alpha_bars[-1]), max_level=cut, init=init
    )
    with _lock:
        _fits[key] = fit
        while len(_fits) > _MAX_CACHED:
            _fits.popitem(last=False)
    return fit


def fill_plan_for_model(
    model: TrainedModel,
    num_steps: int,
    *,
    loss: LossName = "w2",
    height: int,
    width: int,
    read_alpha_bar: float | None = None,
) -> SamplingPlan:
    """The N-step ``fit`` plan of a band model (see the module docstring)."""
    try:
        own = model.schedule.plan(num_steps)
    except ValueError as exc:
        raise ScheduleFitError(str(exc)) from exc
    cut = read_level()
    calls = own.calls_to(cut)
    # By default the read stays where the model's own plan reads (its first level ≥ the cut),
    # so the plan differs from the model's own only in the levels below the cut.
    read = float(own.alpha_bars[calls - 1]) if read_alpha_bar is None else read_alpha_bar
    cut, read = check_read(read)
    # The model's own chain (its levels before the cut are below it), read at `read`.
    init = np.append(own.alpha_bars[: calls - 1], read)
    fit = fitted_fill_chain(
        model, calls, loss=loss, height=height, width=width, init=init, read_alpha_bar=read
    )
    # The fitted chain replaces the own plan's first `calls` steps; its levels above stay.
    return own.with_head(fit.levels)


__all__ = [
    "check_read",
    "clear_cache",
    "fill_plan_for_model",
    "fill_problem",
    "fitted_fill_chain",
    "read_level",
]
