"""Schedules for truncated chains: the band fill's posterior-mean chain (DESIGN.md §4.3, §5).

The SAGD band fill does not run a whole reverse process. It starts at ``ᾱ_top`` from
``x = √ᾱ_top P z + √(1−ᾱ_top) ε_band`` (trusted bands of the image, pure noise in the band),
takes ancestral (DDPM) steps up to the read level ``ᾱ_stop`` (0.1 for the ``mean`` estimator)
and reads Tweedie's ``x̂₀`` there. What a schedule decides for it is where the ``K − 1`` steps
between ``ᾱ_top`` and ``ᾱ_stop`` go (``K`` network calls, the read included), and ``ᾱ_top``
itself. A grid fitted for unconditional generation over ``[ᾱ_min, 1]`` and then cut at
``ᾱ_stop`` keeps only the one or two of its levels that happen to fall in that range.

Gaussian model of the chain (the closed forms of :mod:`.transfer`, restricted): the band model's
noise lives only in the band, and with data diagonal in Fourier the in-band frequencies are
independent of the out-of-band ones, so each in-band frequency (whitened, ``λ / w²``) is a scalar
DDPM chain on the grid ``ᾱ_top = ᾱ_n < … < ᾱ_1 < ᾱ_0 = ᾱ_stop``:

- start variance ``1 − ᾱ_top`` (the band is pure noise), mean 0;
- output ``N(−M √ᾱ_top μ, v)`` in coordinates centred on ``√ᾱ_stop μ``, with
  ``v = M² (1 − ᾱ_top) + v_0`` (``v_0``: the DDPM recursion from variance 0) and ``M = Π b_i``;
- target: the data noised to ``ᾱ_stop``, ``N(0, ᾱ_stop λ + 1 − ᾱ_stop)``: what the read step's
  network was trained on.

The loss is W2² (pixel space, weights ``w²``) or KL between the two, summed over the in-band
frequencies. The mean term needs the power of what the start leaves out, ``√ᾱ_top μ``. For a
conditional model ``μ`` is the conditional mean ``E[x_B | x_notB]`` — the very thing the fill
estimates — whose power is unknown but at most the band's variance ``λ``; ``start_mean="band"``
(default) charges that bound, ``"data"`` only the dataset's mean image (``Spectrum.mean_power``),
``"none"`` nothing. Without the bound a fit starts the chain at ``ᾱ_top`` of a few 1e-3, where
the missed ``√ᾱ_top μ`` is first order in W2 but only second order as a variance deficit.

The fit (:func:`fit_truncated_chain`) is the optimiser of :mod:`.optimize` over the free levels
``ᾱ_1 > … > ᾱ_{K−1}``, bounded by the model's smallest training ᾱ and ``ᾱ_stop``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sagd_core.schedule_design.fitted import ScheduleFitError
from sagd_core.schedule_design.losses import LOSSES, LossName
from sagd_core.schedule_design.optimize import MethodName, minimise_grid
from sagd_core.schedule_design.spectrum import Spectrum
from sagd_core.schedule_design.transfer import _ddpm_variance_core, with_final

logger = logging.getLogger(__name__)

StartMean = Literal["band", "data", "none"]
START_MEANS: tuple[str, ...] = ("band", "data", "none")


def _ddpm_gain_core(ab_full: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``M = Π_i b_i`` of the DDPM chain for grids (..., n+1) (ᾱ_0 first) and flat ``lam``."""
    m = np.ones((*ab_full.shape[:-1], lam.size), dtype=np.result_type(ab_full, lam))
    for i in range(ab_full.shape[-1] - 1, 0, -1):
        prev, cur = ab_full[..., i - 1, None], ab_full[..., i, None]
        alpha = cur / prev
        m = m * (cur * lam + alpha - cur) / (np.sqrt(alpha) * (cur * lam + 1 - cur))
    return m


def _chain_core(
    alpha_bars: np.ndarray, lam: np.ndarray, stop: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(v, M, ᾱ_top)`` of the chain on free grids ``(..., n)`` (decreasing, ``ᾱ_n`` = top)
    read at ``stop``, for flat ``lam``: output variance and mean gain (module docstring)."""
    if alpha_bars.shape[-1] == 0:
        top = np.full((*alpha_bars.shape[:-1], 1), stop)
        gain = np.ones((*alpha_bars.shape[:-1], lam.size))
        from_zero = np.zeros_like(gain)
    else:
        ab_full = with_final(alpha_bars, stop)
        top = alpha_bars[..., -1:]
        gain = _ddpm_gain_core(ab_full, lam)
        from_zero = _ddpm_variance_core(ab_full, lam, 0.0)
    return gain * gain * (1 - top) + from_zero, gain, top


def chain_moments(levels: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frequency ``(v, M)`` of the chain visiting the increasing ``levels`` (``ᾱ_top`` first,
    read level last) from the pure-noise start: its output at the read level is
    ``√ᾱ_stop μ − M √ᾱ_top μ + N(0, v)`` for data ``N(μ, λ)`` (whitened) and the exact denoiser."""
    levels = np.asarray(levels, dtype=np.float64)
    check_levels(levels, float(levels[-1]) if levels.size else math.nan)
    lam = np.asarray(lam, dtype=np.float64)
    v, gain, _ = _chain_core(levels[:-1][::-1], lam.reshape(-1), float(levels[-1]))
    return v.reshape(lam.shape), gain.reshape(lam.shape)


@dataclass(frozen=True, eq=False)
class TruncatedChainProblem:
    """The in-band Gaussian problem of a chain from ``ᾱ_top`` to the read level ``stop``
    (unique whitened λ > 0 with summed loss weights and start-mean weights)."""

    lam: np.ndarray
    weights: np.ndarray
    mean_weights: np.ndarray
    loss: str
    stop: float

    @classmethod
    def build(
        cls,
        whitened: Spectrum,
        noise_w2: np.ndarray,
        *,
        stop: float,
        loss: LossName = "w2",
        start_mean: StartMean = "band",
    ) -> TruncatedChainProblem:
        """``whitened``: the data spectrum divided by the noise power ``noise_w2`` (half grid,
        :meth:`Spectrum.whiten`); bins without noise (λ = 0 there) are left out."""
        if loss not in LOSSES:
            raise ScheduleFitError(f"unknown loss {loss!r}; use one of {LOSSES}")
        if start_mean not in START_MEANS:
            raise ScheduleFitError(f"unknown start_mean {start_mean!r}; use one of {START_MEANS}")
        if not (math.isfinite(stop) and 0 < stop < 1):
            raise ScheduleFitError(f"the read level must lie in (0, 1), got {stop}")
        lam, mult = whitened.flattened()
        w2 = np.broadcast_to(np.asarray(noise_w2, dtype=np.float64), whitened.lam.shape)
        w2 = w2.reshape(-1)
        keep = (lam > 0) & (w2 > 0)
        if not np.any(keep):
            raise ScheduleFitError("no frequency carries both noise and data variance")
        weight = mult * (w2 if loss == "w2" else 1.0)
        if start_mean == "band":
            power = lam
        elif start_mean == "data" and whitened.mean_power is not None:
            power = whitened.mean_power.reshape(-1)
        else:
            power = np.zeros_like(lam)
        uniq, inverse = np.unique(lam[keep], return_inverse=True)
        summed = np.bincount(inverse, weights=weight[keep], minlength=uniq.size)
        mean_summed = np.bincount(inverse, weights=(weight * power)[keep], minlength=uniq.size)
        return cls(uniq, summed, mean_summed, loss, float(stop))

    def batch(self, alpha_bars: np.ndarray) -> np.ndarray:
        """Loss of each free grid ``(B, n)`` (decreasing ``ᾱ_1 > … > ᾱ_n = ᾱ_top``, all below
        ``stop``); real or complex, no validation. ``n = 0`` is the chain that starts at the
        read level (one network call)."""
        v, gain, top = _chain_core(np.asarray(alpha_bars), self.lam, self.stop)
        target = self.stop * self.lam + 1 - self.stop
        mean_sq = gain * gain * top  # times the start-mean power (in mean_weights)
        if self.loss == "w2":
            d = np.sqrt(v) - np.sqrt(target)
            terms = self.weights * d * d + self.mean_weights * mean_sq
        else:
            ratio = v / target
            terms = 0.5 * (
                self.weights * (ratio - 1 - np.log(ratio)) + self.mean_weights * mean_sq / target
            )
        return np.sum(terms, axis=-1)

    def value(self, levels: np.ndarray) -> float:
        """Loss of a chain given by its visited levels, *increasing* ``ᾱ_top … ᾱ_stop``."""
        levels = np.asarray(levels, dtype=np.float64)
        check_levels(levels, self.stop)
        return float(self.batch(levels[:-1][::-1][None, :])[0])


def check_levels(levels: np.ndarray, stop: float) -> None:
    if levels.ndim != 1 or levels.size < 1 or not np.all(np.isfinite(levels)):
        raise ScheduleFitError("a chain needs at least one finite level")
    if not math.isclose(float(levels[-1]), stop, rel_tol=1e-9):
        raise ScheduleFitError(f"the chain must end at the read level {stop}, got {levels[-1]}")
    if np.any(levels <= 0) or np.any(levels >= 1) or np.any(np.diff(levels) <= 0):
        raise ScheduleFitError("chain levels must lie in (0, 1) and strictly increase")


@dataclass(frozen=True, eq=False)
class TruncatedFit:
    """A fitted chain: the levels it visits, increasing ``ᾱ_top … ᾱ_stop`` (``calls`` of them,
    one network call each), and its loss against the start it came from."""

    levels: np.ndarray
    loss_init: float
    loss_final: float
    init: str
    method: str

    @property
    def calls(self) -> int:
        return int(self.levels.size)


def _start_grids(calls: int, lo: float, hi: float) -> dict[str, np.ndarray]:
    """Starting free grids (decreasing ᾱ, ``calls − 1`` levels): uniform in ᾱ and in log-SNR."""
    n = calls - 1
    ab_hi, ab_lo = 1 / (1 + math.exp(-hi)), 1 / (1 + math.exp(-lo))
    uniform = np.linspace(ab_hi, max(ab_lo, ab_hi / (4 * n)), n)
    log_snr = np.linspace(hi, lo, n)
    return {"uniform-alpha-bar": uniform, "uniform-log-snr": 1 / (1 + np.exp(-log_snr))}


def fit_truncated_chain(
    problem: TruncatedChainProblem,
    calls: int,
    *,
    alpha_bar_min: float,
    max_level: float | None = None,
    init: np.ndarray | None = None,
    margin: float = 1e-3,
    max_iter: int = 500,
    method: MethodName = "slsqp",
) -> TruncatedFit:
    """The ``calls``-level chain (``calls − 1`` steps, then the read at ``problem.stop``) of
    least loss, its top level at least ``alpha_bar_min`` (the model's training range) and every
    level before the read below ``max_level`` (default: the read level; a lower one leaves a
    jump to the read, for a read level above the restoration code's cut, see
    :mod:`sagd_core.planning.fill`).

    ``init``: an extra starting chain (increasing levels ending at the read level, e.g. a
    heuristic plan cut there), tried along with grids uniform in ᾱ and in log-SNR; the best
    result counts and ``loss_init`` is the loss of ``init`` if given (else of the best start).
    """
    if calls < 1:
        raise ScheduleFitError(f"a chain needs at least one call, got {calls}")
    stop = problem.stop
    below = stop if max_level is None else float(max_level)
    if not 0 < below <= stop:
        raise ScheduleFitError(f"max_level must lie in (0, {stop}], got {max_level}")
    if not 0 < alpha_bar_min < below:
        raise ScheduleFitError(f"alpha_bar_min must lie in (0, {below}), got {alpha_bar_min}")
    if calls == 1:
        value = problem.value(np.array([stop]))
        return TruncatedFit(np.array([stop]), value, value, "read only", "none")
    lo = math.log(alpha_bar_min) - math.log1p(-alpha_bar_min)
    hi = math.log(below) - math.log1p(-below) - margin
    if (calls - 1) * margin >= hi - lo:
        raise ScheduleFitError(f"{calls} levels do not fit below {below} with margin {margin}")
    starts = _start_grids(calls, lo, hi)
    loss_init: float | None = None
    if init is not None:
        levels0 = np.asarray(init, dtype=np.float64)
        check_levels(levels0, stop)
        if levels0.size != calls:
            raise ScheduleFitError(f"init chain has {levels0.size} levels, expected {calls}")
        if calls > 1 and levels0[-2] >= below:
            raise ScheduleFitError(f"init chain has levels at or above {below} before the read")
        starts = {"init": levels0[:-1][::-1].copy(), **starts}
        loss_init = problem.value(levels0)
    best: tuple[float, np.ndarray, str, str] | None = None
    start_losses = []
    for name, grid0 in starts.items():
        fit = minimise_grid(problem, grid0, lo, hi, margin=margin, max_iter=max_iter, method=method)
        start_losses.append(fit.loss_init)
        if best is None or fit.value < best[0]:
            best = (fit.value, fit.alpha_bars, name, fit.method)
    assert best is not None
    if loss_init is None:
        loss_init = min(start_losses)
    value, grid, init_name, used = best
    levels = np.concatenate([grid[::-1], [stop]])
    logger.info(
        "truncated chain fit (%s, %d calls, read at %.3g): %.6g -> %.6g (from %s, %s)",
        problem.loss,
        calls,
        stop,
        loss_init,
        value,
        init_name,
        used,
    )
    return TruncatedFit(levels, float(loss_init), float(value), init_name, used)


__all__ = [
    "START_MEANS",
    "StartMean",
    "TruncatedChainProblem",
    "TruncatedFit",
    "chain_moments",
    "check_levels",
    "fit_truncated_chain",
]
