"""Fit an N-step ᾱ grid to a data spectrum by minimising W2² or KL (DESIGN.md §5).

Grids follow :mod:`sagd_core.schedule_design.transfer`: ``alpha_bars`` decreasing ``ᾱ_1 > … > ᾱ_N``
plus ``final_alpha_bar = ᾱ_0`` (default 1). The starting grids are the heuristics of
:mod:`sagd_core.schedule_design.heuristics`; the result is a
:class:`~sagd_core.schedule_design.fitted.FittedSchedule`.

Optimisation. SLSQP over ``z_i = logit(ᾱ_i)`` (the log-SNR): this is the problem of DESIGN.md §5
(bounds ``ᾱ ∈ [1e-6, 0.99999]`` by default, monotone with a margin, here
``z_i − z_{i+1} ≥ margin``) in better scaled coordinates. Gradients are exact, by the complex step
(every closed form is analytic). If SLSQP fails or does not improve, an unconstrained
parametrisation is tried with L-BFGS: positive log-SNR increments ``softmax(u)`` of the available
range (one slack entry), which meets both bounds and the margin by construction. The best feasible
grid (never worse than the start) is returned. Everything is deterministic.

For a trained network the bounds should be its training range of ᾱ (``alpha_bar_range``): outside
it the model time is clamped (:meth:`~sagd_core.schedules.Schedule.time_for_alpha_bar`) and the
network would be asked about a noise level it never saw.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from scipy.optimize import minimize

from sagd_core.schedule_design.fitted import (
    FITTED_FORMAT,
    FITTED_VERSION,
    FittedSchedule,
    ScheduleFitError,
)
from sagd_core.schedule_design.heuristics import (
    check_steps,
    cosine_alpha_bars,
    cosine_train_alpha_bars,
    leading_timesteps,
    linear_alpha_bars,
    linear_train_alpha_bars,
)
from sagd_core.schedule_design.losses import LOSSES, LossName, loss_terms, mean_terms
from sagd_core.schedule_design.spectrum import Spectrum
from sagd_core.schedule_design.transfer import (
    SAMPLERS,
    SamplerName,
    ScheduleGridError,
    _mean_error_core,
    _output_variance_core,
    validate_alpha_bars,
    with_final,
)

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

logger = logging.getLogger(__name__)

ALPHA_BAR_MIN = 1e-6
ALPHA_BAR_MAX = 0.99999
_COMPLEX_STEP = 1e-30
_MAX_BATCH_ELEMENTS = 2_000_000

InitName = Literal["linear", "cosine"]
MethodName = Literal["slsqp", "lbfgs"]

# Re-exported for code that imported them from here before the split into modules.
__all__ = [
    "ALPHA_BAR_MAX",
    "ALPHA_BAR_MIN",
    "FITTED_FORMAT",
    "FITTED_VERSION",
    "FittedSchedule",
    "GridFit",
    "InitName",
    "MethodName",
    "ScheduleFitError",
    "cosine_alpha_bars",
    "cosine_train_alpha_bars",
    "leading_timesteps",
    "linear_alpha_bars",
    "linear_train_alpha_bars",
    "minimise_grid",
    "optimize_schedule",
    "schedule_loss",
]


# --- objective -------------------------------------------------------------------------------


def _spectrum_arrays(
    lam: np.ndarray | Spectrum, weights: np.ndarray | None, use_mean: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Flat ``(λ, weights, |μ|²)``; a Spectrum contributes its half-grid multiplicities (times
    ``weights``, which must broadcast to ``lam``'s shape) and, with ``use_mean``, its mean power
    (None when absent)."""
    mean: np.ndarray | None = None
    if isinstance(lam, Spectrum):
        arr, base = lam.flattened()
        shape: tuple[int, ...] = lam.lam.shape
        if use_mean and lam.mean_power is not None:
            mean = lam.mean_power.reshape(-1)
    else:
        arr = np.asarray(lam, dtype=np.float64)
        shape, base = arr.shape, np.ones(arr.size)
        arr = arr.reshape(-1)
    if weights is None:
        return arr, base, mean
    try:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), shape)
    except ValueError as exc:
        raise ScheduleFitError(f"weights {np.shape(weights)} do not match lam {shape}") from exc
    return arr, base * w.reshape(-1), mean


@dataclass(frozen=True, eq=False)
class _Objective:
    """Loss of a batch of grids against a compressed spectrum (unique λ > 0, summed weights;
    ``mean_weights`` sums ``weight · |μ|²`` per unique λ, exact since the mean term is linear
    in ``|μ|²``)."""

    lam: np.ndarray
    weights: np.ndarray
    sampler: str
    loss: str
    final_alpha_bar: float
    prior_variance: float
    mean_weights: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        lam: np.ndarray | Spectrum,
        weights: np.ndarray | None,
        sampler: str,
        loss: str,
        final_alpha_bar: float,
        prior_variance: float,
        use_mean: bool = True,
    ) -> _Objective:
        if sampler not in SAMPLERS:
            raise ScheduleFitError(f"unknown sampler {sampler!r}; use one of {SAMPLERS}")
        if loss not in LOSSES:
            raise ScheduleFitError(f"unknown loss {loss!r}; use one of {LOSSES}")
        if not (math.isfinite(prior_variance) and prior_variance > 0):
            raise ScheduleFitError(f"prior_variance must be positive, got {prior_variance}")
        flat, w, mean = _spectrum_arrays(lam, weights, use_mean)
        if not (np.all(np.isfinite(flat)) and np.all(flat >= 0)):
            raise ScheduleFitError("lam must be finite and non-negative")
        if not (np.all(np.isfinite(w)) and np.all(w >= 0)):
            raise ScheduleFitError("weights must be finite and non-negative")
        keep = (flat > 0) & (w > 0)
        if not np.any(keep):
            raise ScheduleFitError("the spectrum has no frequency with λ > 0")
        # Identical λ give identical terms: fit on unique values with summed weights (exact).
        uniq, inverse = np.unique(flat[keep], return_inverse=True)
        summed = np.bincount(inverse, weights=w[keep], minlength=uniq.size)
        mean_summed = None
        if mean is not None and np.any(mean[keep] > 0):
            mean_summed = np.bincount(inverse, weights=(w * mean)[keep], minlength=uniq.size)
        return cls(uniq, summed, sampler, loss, final_alpha_bar, prior_variance, mean_summed)

    def batch(self, alpha_bars: np.ndarray) -> np.ndarray:
        """Loss of each grid in ``alpha_bars`` (B, N); real or complex, no validation."""
        ab_full = with_final(alpha_bars, self.final_alpha_bar)
        v = _output_variance_core(ab_full, self.lam, self.sampler, self.prior_variance)
        total = np.sum(self.weights * loss_terms(v, self.lam, self.loss), axis=-1)
        if self.mean_weights is not None:
            e = _mean_error_core(ab_full, self.lam, self.sampler)
            total = total + np.sum(
                mean_terms(e * e * self.mean_weights, self.lam, self.loss), axis=-1
            )
        return total

    def value(self, alpha_bars: np.ndarray) -> float:
        return float(self.batch(np.asarray(alpha_bars, dtype=np.float64)[None, :])[0])


def schedule_loss(
    alpha_bars: np.ndarray,
    lam: np.ndarray | Spectrum,
    *,
    sampler: SamplerName = "ddim",
    loss: LossName = "w2",
    final_alpha_bar: float = 1.0,
    prior_variance: float = 1.0,
    weights: np.ndarray | None = None,
    use_mean: bool = True,
) -> float:
    """W2² or KL between sampler output and data, summed over frequencies (and channels).

    A :class:`Spectrum` brings its half-grid multiplicities; a plain array is a full grid. Optional
    ``weights`` multiply every term. For SAGD noise ``w``, ``lam`` is the whitened spectrum and
    W2² is measured in whitened coordinates; ``weights=w**2`` gives pixel-space W2² instead (KL is
    the same in both). Frequencies with λ = 0 are excluded. A Spectrum with ``mean_power`` adds
    the cost of the missed data mean (:func:`~.transfer.mean_error_gain`) unless ``use_mean`` is
    False.
    """
    ab = validate_alpha_bars(alpha_bars, final_alpha_bar)
    objective = _Objective.build(
        lam, weights, sampler, loss, final_alpha_bar, prior_variance, use_mean
    )
    return objective.value(ab)


def _value_and_grad(
    fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, cols: int
) -> tuple[float, np.ndarray]:
    """Value and exact gradient of ``fun`` (batched, analytic) by the complex-step method.

    ``fun`` maps a (B, n) batch of points to (B,) values; ``cols`` is the per-row working width
    (number of frequencies), used to bound memory by evaluating the n perturbations in chunks.
    """
    n = x.size
    grad = np.empty(n)
    value = math.nan
    chunk = max(1, _MAX_BATCH_ELEMENTS // max(1, cols))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        xs = np.tile(x.astype(np.complex128), (stop - start, 1))
        xs[np.arange(stop - start), np.arange(start, stop)] += 1j * _COMPLEX_STEP
        out = fun(xs)
        grad[start:stop] = out.imag / _COMPLEX_STEP
        value = float(out[0].real)
    return value, grad


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _logit(a: np.ndarray) -> np.ndarray:
    return np.log(a) - np.log1p(-a)


def _make_feasible(z: np.ndarray, lo: float, hi: float, margin: float) -> np.ndarray:
    """Project a log-SNR grid onto ``hi ≥ z_1``, ``z_i − z_{i+1} ≥ margin``, ``z_N ≥ lo``."""
    z = np.clip(np.asarray(z, dtype=np.float64), lo, hi)
    for i in range(1, z.size):
        z[i] = min(z[i], z[i - 1] - margin)
    z[-1] = max(z[-1], lo)
    for i in range(z.size - 2, -1, -1):
        z[i] = max(z[i], z[i + 1] + margin)
    return z


# --- optimiser -------------------------------------------------------------------------------


def _initial_grid(init: InitName | np.ndarray, num_steps: int, T: int) -> tuple[np.ndarray, str]:
    if isinstance(init, str):
        if init == "linear":
            return linear_alpha_bars(num_steps, T), "linear"
        if init == "cosine":
            return cosine_alpha_bars(num_steps, T), "cosine"
        raise ScheduleFitError(f"unknown init {init!r}; use 'linear', 'cosine' or an array")
    grid = validate_alpha_bars(np.asarray(init, dtype=np.float64))
    if grid.size != num_steps:
        raise ScheduleFitError(f"init grid has {grid.size} steps, expected {num_steps}")
    return grid, "custom"


def _run_slsqp(
    f: Callable[[np.ndarray], tuple[float, np.ndarray]],
    z0: np.ndarray,
    lo: float,
    hi: float,
    margin: float,
    max_iter: int,
) -> OptimizeResult:
    n = z0.size
    diff = np.zeros((max(n - 1, 0), n))
    diff[np.arange(n - 1), np.arange(n - 1)] = 1.0
    diff[np.arange(n - 1), np.arange(1, n)] = -1.0
    constraints = []
    if n > 1:
        constraints.append(
            {"type": "ineq", "fun": lambda z: diff @ z - margin, "jac": lambda z: diff}
        )
    return minimize(
        f,
        z0,
        jac=True,
        method="SLSQP",
        bounds=[(lo, hi)] * n,
        constraints=constraints,
        options={"maxiter": max_iter, "ftol": 1e-12},
    )


def _run_lbfgs(
    z0: np.ndarray,
    lo: float,
    hi: float,
    margin: float,
    max_iter: int,
    cols: int,
    batch: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, OptimizeResult]:
    n = z0.size
    total = hi - lo - (n - 1) * margin
    steps = np.concatenate([[hi - z0[0]], -np.diff(z0) - margin])
    slack = total - steps.sum()
    d = np.maximum(np.concatenate([steps, [slack]]), 1e-12 * total)
    u0 = np.log(d / d.sum())

    def to_z(u: np.ndarray) -> np.ndarray:
        e = np.exp(u - np.max(u.real, axis=-1, keepdims=True))
        inc = total * e / np.sum(e, axis=-1, keepdims=True)
        return hi - np.cumsum(inc[..., :n], axis=-1) - margin * np.arange(n)

    def fu(u: np.ndarray) -> tuple[float, np.ndarray]:
        return _value_and_grad(lambda us: batch(to_z(us)), u, cols)

    res = minimize(
        fu,
        u0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-10},
    )
    return to_z(res.x[None, :])[0].real, res


def _check_range(alpha_bar_range: tuple[float, float] | None) -> tuple[float, float]:
    if alpha_bar_range is None:
        return ALPHA_BAR_MIN, ALPHA_BAR_MAX
    try:
        lo, hi = (float(v) for v in alpha_bar_range)
    except (TypeError, ValueError) as exc:
        msg = f"alpha_bar_range must be two numbers, got {alpha_bar_range!r}"
        raise ScheduleFitError(msg) from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi < 1):
        raise ScheduleFitError(f"alpha_bar_range must satisfy 0 < low < high < 1, got {lo}, {hi}")
    return lo, hi


@dataclass(frozen=True, eq=False)
class GridFit:
    """What :func:`minimise_grid` found: the best decreasing grid and how."""

    alpha_bars: np.ndarray
    value: float
    loss_init: float
    method: str
    success: bool
    iterations: int
    message: str


class GridObjective(Protocol):
    """A loss over batches of grids: ``batch`` maps a ``(B, n)`` batch of grids (real or
    complex: it is differentiated by the complex step) to ``(B,)`` losses; ``lam.size`` is the
    per-row working width, used to bound memory."""

    @property
    def lam(self) -> np.ndarray: ...

    def batch(self, grids: np.ndarray, /) -> np.ndarray: ...


def minimise_grid(
    objective: GridObjective,
    grid0: np.ndarray,
    lo: float,
    hi: float,
    *,
    margin: float = 1e-3,
    max_iter: int = 500,
    method: MethodName = "slsqp",
) -> GridFit:
    """Minimise ``objective`` over decreasing grids ``ᾱ_1 > … > ᾱ_n`` with log-SNR in
    ``[lo, hi]`` and consecutive gaps ``≥ margin`` (the optimiser of the module docstring);
    ``grid0`` is the start (projected into the bounds). Never worse than the start.
    """
    batch_loss, cols = objective.batch, objective.lam.size
    z0 = _make_feasible(_logit(np.asarray(grid0, dtype=np.float64)), lo, hi, margin)

    def value_of(z: np.ndarray) -> float:
        return float(batch_loss(_sigmoid(z)[None, :])[0].real)

    loss0 = value_of(z0)
    if not (math.isfinite(loss0) and loss0 > 0):
        raise ScheduleFitError(f"initial loss is {loss0}; nothing to optimise")

    def batch(zs: np.ndarray) -> np.ndarray:
        return batch_loss(_sigmoid(zs)) / loss0

    def f(z: np.ndarray) -> tuple[float, np.ndarray]:
        return _value_and_grad(batch, z, cols)

    candidates: list[tuple[float, np.ndarray, str, bool, int, str]] = [
        (loss0, z0, "init", True, 0, "initial grid")
    ]
    if method == "slsqp":
        res = _run_slsqp(f, z0, lo, hi, margin, max_iter)
        z = _make_feasible(res.x, lo, hi, margin)
        candidates.append(
            (value_of(z), z, "slsqp", bool(res.success), int(res.nit), str(res.message))
        )
    if method == "lbfgs" or not candidates[-1][3] or candidates[-1][0] >= loss0:
        z, res = _run_lbfgs(z0, lo, hi, margin, max_iter, cols, batch)
        z = _make_feasible(z, lo, hi, margin)
        candidates.append(
            (value_of(z), z, "lbfgs", bool(res.success), int(res.nit), str(res.message))
        )
    finite = [c for c in candidates if math.isfinite(c[0])]
    value, z, used, success, nit, message = min(finite, key=lambda c: c[0])
    return GridFit(_sigmoid(z), value, loss0, used, success, nit, message)


def optimize_schedule(
    lam: np.ndarray | Spectrum,
    num_steps: int,
    *,
    sampler: SamplerName = "ddim",
    loss: LossName = "w2",
    init: InitName | np.ndarray = "linear",
    T: int = 1000,
    final_alpha_bar: float = 1.0,
    prior_variance: float = 1.0,
    weights: np.ndarray | None = None,
    method: MethodName = "slsqp",
    margin: float = 1e-3,
    max_iter: int = 500,
    alpha_bar_range: tuple[float, float] | None = None,
    use_mean: bool = True,
) -> FittedSchedule:
    """Fit ``ᾱ_1 > … > ᾱ_N`` minimising ``loss`` for ``sampler`` on the spectrum ``lam``.

    ``lam``: a :class:`Spectrum` (whitened already for SAGD noise, :meth:`Spectrum.whiten`) or an
    array of eigenvalues (a full grid); ``weights`` as in :func:`schedule_loss`. ``init`` is the
    starting grid (the ``linear``/``cosine`` heuristic at N steps, or an array); ``loss_init`` of
    the result is its loss after projection into the bounds. ``margin`` is the minimum log-SNR gap
    between consecutive levels. ``method='lbfgs'`` skips SLSQP. ``alpha_bar_range`` replaces the
    default bounds ``(1e-6, 0.99999)`` on every ᾱ_i (use a model's training range).
    ``use_mean`` as in :func:`schedule_loss`.
    """
    check_steps(num_steps, T)
    if method not in ("slsqp", "lbfgs"):
        raise ScheduleFitError(f"unknown method {method!r}; use 'slsqp' or 'lbfgs'")
    if not (math.isfinite(margin) and margin > 0) or max_iter < 1:
        raise ScheduleFitError(f"need margin > 0 and max_iter >= 1, got {margin}, {max_iter}")
    if not (math.isfinite(final_alpha_bar) and 0 < final_alpha_bar <= 1):
        raise ScheduleGridError(f"final_alpha_bar must lie in (0, 1], got {final_alpha_bar}")
    objective = _Objective.build(
        lam, weights, sampler, loss, final_alpha_bar, prior_variance, use_mean
    )
    grid0, init_name = _initial_grid(init, num_steps, T)

    ab_min, ab_max = _check_range(alpha_bar_range)
    lo = math.log(ab_min) - math.log1p(-ab_min)
    top = min(ab_max, final_alpha_bar)
    if top <= ab_min:
        raise ScheduleFitError(f"final_alpha_bar {final_alpha_bar} is below the range {ab_min}")
    hi = math.log(top) - math.log1p(-top)
    if (num_steps - 1) * margin >= hi - lo:
        raise ScheduleFitError(f"{num_steps} steps do not fit in the bounds with margin {margin}")
    fit = minimise_grid(objective, grid0, lo, hi, margin=margin, max_iter=max_iter, method=method)
    logger.info(
        "schedule fit (%s, %s, N=%d): %s %.6g -> %.6g (%s)",
        *(sampler, loss, num_steps, init_name, fit.loss_init, fit.value, fit.method),
    )
    return FittedSchedule(
        alpha_bars=fit.alpha_bars,
        final_alpha_bar=final_alpha_bar,
        sampler=sampler,
        loss=loss,
        init=init_name,
        num_train_timesteps=T,
        prior_variance=prior_variance,
        loss_init=fit.loss_init,
        loss_final=fit.value,
        method=fit.method,
        success=fit.success,
        iterations=fit.iterations,
        margin=margin,
        message=fit.message,
    )
