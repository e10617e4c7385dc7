r"""Closed-form spectral transfer of DDIM/DDPM samplers on Gaussian data (DESIGN.md §5).

Setting. Each frequency (and channel) is an independent scalar problem: ``x_0 ~ N(0, λ)``, with λ
the data variance in (SAGD-)whitened coordinates, ``x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε``. The ideal
(Wiener, MMSE) denoiser at level ᾱ is linear, with ``D = ᾱλ + 1 − ᾱ`` (the variance of ``x_t``)::

    x̂_0 = √ᾱ λ x / D,        ε̂ = (x − √ᾱ x̂_0)/√(1−ᾱ) = √(1−ᾱ) x / D.

Grid convention (DESIGN.md §5). ``alpha_bars`` is the decreasing array ``ᾱ_1 > … > ᾱ_N`` (index 0
holds ᾱ_1, the last entry ᾱ_N, the prior level); ``final_alpha_bar`` is ``ᾱ_0 ≥ ᾱ_1``, the level
the last step lands on (default 1: the last DDIM step then *is* the Wiener denoiser x̂_0). The prior
is ``x_N ~ N(0, prior_variance)`` (1 for a VP process in whitened coordinates). The sampler output
is the state at level ᾱ_0, compared with the data variance λ by the losses. A sampler run visits the
grid in the reverse order (ᾱ_N first); ``alpha_bars[::-1]`` is that order.

DDIM (η = 0), from ``x_{i−1} = √ᾱ_{i−1} x̂_0 + √(1−ᾱ_{i−1}) ε̂`` with the denoiser above::

    x_{i−1} = g_i x_i,   g_i = [√(ᾱ_{i−1}ᾱ_i) λ + √((1−ᾱ_{i−1})(1−ᾱ_i))] / (ᾱ_i λ + 1 − ᾱ_i),

so the sampler is the linear filter ``H = Π_i g_i`` and ``v = prior_variance · H²``. For
``ᾱ_{i−1} = 1``, ``g_i = √ᾱ_i λ / D_i`` (the Wiener gain).

DDPM (posterior mean with the denoiser plugged in, "fixed small" variance β̃)::

    α_i = ᾱ_i/ᾱ_{i−1},  β_i = 1 − α_i,  s_i² = (1−ᾱ_{i−1})/(1−ᾱ_i) β_i,
    μ = √ᾱ_{i−1} β_i/(1−ᾱ_i) x̂_0 + √α_i (1−ᾱ_{i−1})/(1−ᾱ_i) x_i = b_i x_i,
    b_i = (ᾱ_i λ + α_i − ᾱ_i) / (√α_i (ᾱ_i λ + 1 − ᾱ_i)),

and ``x_{i−1} = b_i x_i + s_i z``, so ``v ← b_i² v + s_i²`` from ``v = prior_variance`` at i = N
down to 1. The test suite checks both against a Monte Carlo run of the update formulas.

Data mean. With ``x_0 ~ N(μ, λ)`` the Wiener denoiser is ``x̂_0 = μ + (√ᾱ λ / D)(x − √ᾱ μ)``,
and both samplers are the maps above in the centred coordinates ``y = x − √ᾱ μ`` (every update is
affine and reproduces ``√ᾱ_{i−1} μ`` from ``√ᾱ_i μ``). The prior ``N(0, ·)`` starts at
``y_N = −√ᾱ_N μ``, so the output mean misses the data mean by ``e μ`` with the *mean-error gain*
``e = √ᾱ_0 − 1 − M √ᾱ_N``, ``M = H`` (DDIM) or ``M = Π_i b_i`` (DDPM): a schedule ending
(ᾱ_N) too high leaves part of the mean image ungenerated.

VE (optional): with ``σ² = (1−ᾱ)/ᾱ`` and ``x = x_VP/√ᾱ`` the same DDIM is ``x_{i−1} = x̂_0 +
(σ_{i−1}/σ_i)(x_i − x̂_0)``, ``x̂_0 = λ x/(λ + σ_i²)``, i.e. ``g_i = (λ + σ_{i−1}σ_i)/(λ + σ_i²)``.

Every function broadcasts over the shape of ``lam`` (any shape; the output has ``lam``'s shape).
The private ``_*_core`` functions take a batch of grids and work on complex input too (the
optimiser differentiates them by the complex step).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

SamplerName = Literal["ddim", "ddpm"]
SAMPLERS: tuple[str, ...] = ("ddim", "ddpm")


class ScheduleGridError(ValueError):
    """An ᾱ grid, λ array or sampler setting that the closed forms cannot use."""


def validate_alpha_bars(alpha_bars: np.ndarray, final_alpha_bar: float = 1.0) -> np.ndarray:
    """Check ``1 ≥ ᾱ_0 ≥ ᾱ_1 > … > ᾱ_N > 0`` and return the grid as float64."""
    ab = np.asarray(alpha_bars, dtype=np.float64)
    if ab.ndim != 1 or ab.size < 1:
        raise ScheduleGridError(f"alpha_bars must be a non-empty 1-D array, got shape {ab.shape}")
    if not np.all(np.isfinite(ab)) or np.any(ab <= 0) or np.any(ab >= 1):
        raise ScheduleGridError("alpha_bars must lie in the open interval (0, 1)")
    if np.any(np.diff(ab) >= 0):
        raise ScheduleGridError("alpha_bars must be strictly decreasing (ᾱ_1 > … > ᾱ_N)")
    if not (math.isfinite(final_alpha_bar) and ab[0] <= final_alpha_bar <= 1):
        raise ScheduleGridError(
            f"final_alpha_bar must satisfy ᾱ_1 = {ab[0]} <= final_alpha_bar <= 1, "
            f"got {final_alpha_bar}"
        )
    return ab


def _validate_lam(lam: np.ndarray) -> np.ndarray:
    lam = np.asarray(lam, dtype=np.float64)
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ScheduleGridError("lam must be finite and non-negative")
    return lam


def _validate_prior(prior_variance: float) -> None:
    if not (math.isfinite(prior_variance) and prior_variance > 0):
        raise ScheduleGridError(f"prior_variance must be positive, got {prior_variance}")


def with_final(alpha_bars: np.ndarray, final_alpha_bar: float | complex) -> np.ndarray:
    """Prepend ᾱ_0: ``(..., N)`` → ``(..., N+1)`` with index 0 = ᾱ_0 (works for batches)."""
    head = np.full((*alpha_bars.shape[:-1], 1), final_alpha_bar, dtype=alpha_bars.dtype)
    return np.concatenate([head, alpha_bars], axis=-1)


def _ddim_transfer_core(ab_full: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``H`` for grids ``ab_full`` (..., N+1) (ᾱ_0 first) and flat ``lam`` (F,) → (..., F)."""
    h = np.ones((*ab_full.shape[:-1], lam.size), dtype=np.result_type(ab_full, lam))
    for i in range(1, ab_full.shape[-1]):
        prev, cur = ab_full[..., i - 1, None], ab_full[..., i, None]
        h = (
            h
            * (np.sqrt(prev * cur) * lam + np.sqrt((1 - prev) * (1 - cur)))
            / (cur * lam + 1 - cur)
        )
    return h


def _ddpm_variance_core(ab_full: np.ndarray, lam: np.ndarray, prior_variance: float) -> np.ndarray:
    """DDPM output variance for grids (..., N+1) (ᾱ_0 first) and flat ``lam`` (F,) → (..., F)."""
    v = np.full((*ab_full.shape[:-1], lam.size), prior_variance, dtype=np.result_type(ab_full, lam))
    for i in range(ab_full.shape[-1] - 1, 0, -1):
        prev, cur = ab_full[..., i - 1, None], ab_full[..., i, None]
        alpha = cur / prev
        s2 = (1 - prev) / (1 - cur) * (1 - alpha)
        b = (cur * lam + alpha - cur) / (np.sqrt(alpha) * (cur * lam + 1 - cur))
        v = b * b * v + s2
    return v


def _output_variance_core(
    ab_full: np.ndarray, lam: np.ndarray, sampler: str, prior_variance: float
) -> np.ndarray:
    if sampler == "ddim":
        h = _ddim_transfer_core(ab_full, lam)
        return prior_variance * h * h
    if sampler == "ddpm":
        return _ddpm_variance_core(ab_full, lam, prior_variance)
    raise ScheduleGridError(f"unknown sampler {sampler!r}; use one of {SAMPLERS}")


def _mean_error_core(ab_full: np.ndarray, lam: np.ndarray, sampler: str) -> np.ndarray:
    """Mean-error gain ``e = √ᾱ_0 − 1 − M √ᾱ_N`` for grids (..., N+1) and flat ``lam`` (F,)."""
    if sampler == "ddim":
        m = _ddim_transfer_core(ab_full, lam)
    elif sampler == "ddpm":
        m = np.ones((*ab_full.shape[:-1], lam.size), dtype=np.result_type(ab_full, lam))
        for i in range(ab_full.shape[-1] - 1, 0, -1):
            prev, cur = ab_full[..., i - 1, None], ab_full[..., i, None]
            alpha = cur / prev
            m = m * (cur * lam + alpha - cur) / (np.sqrt(alpha) * (cur * lam + 1 - cur))
    else:
        raise ScheduleGridError(f"unknown sampler {sampler!r}; use one of {SAMPLERS}")
    return np.sqrt(ab_full[..., :1]) - 1 - m * np.sqrt(ab_full[..., -1:])


def mean_error_gain(
    alpha_bars: np.ndarray,
    lam: np.ndarray,
    *,
    sampler: SamplerName = "ddim",
    final_alpha_bar: float = 1.0,
) -> np.ndarray:
    """Per-frequency ``e``: the sampler's output mean is ``μ + e μ`` for data mean ``μ`` and a
    zero-mean prior (``e = √ᾱ_0 − 1 − M √ᾱ_N``; see the module docstring)."""
    ab = with_final(validate_alpha_bars(alpha_bars, final_alpha_bar), final_alpha_bar)
    lam = _validate_lam(lam)
    return _mean_error_core(ab, lam.reshape(-1), sampler).reshape(lam.shape)


def wiener_x0_gain(lam: np.ndarray, alpha_bar: float) -> np.ndarray:
    """Per-frequency factor of the ideal denoiser, ``x̂_0 = (√ᾱ λ / D) x``."""
    lam = _validate_lam(lam)
    return math.sqrt(alpha_bar) * lam / (alpha_bar * lam + 1 - alpha_bar)


def wiener_eps_gain(lam: np.ndarray, alpha_bar: float) -> np.ndarray:
    """Per-frequency factor of the ideal ε-predictor, ``ε̂ = (√(1−ᾱ) / D) x`` (for ᾱ < 1)."""
    lam = _validate_lam(lam)
    return math.sqrt(1 - alpha_bar) / (alpha_bar * lam + 1 - alpha_bar)


def ddim_gains(
    alpha_bars: np.ndarray, lam: np.ndarray, *, final_alpha_bar: float = 1.0
) -> np.ndarray:
    """Per-step DDIM gains, shape ``(N, *lam.shape)``; row ``j`` is ``g_{j+1}`` (ᾱ_{j+1} → ᾱ_j)."""
    ab = with_final(validate_alpha_bars(alpha_bars, final_alpha_bar), final_alpha_bar)
    lam = _validate_lam(lam)
    prev, cur = ab[:-1, None], ab[1:, None]
    flat = lam.reshape(-1)
    g = (np.sqrt(prev * cur) * flat + np.sqrt((1 - prev) * (1 - cur))) / (cur * flat + 1 - cur)
    return g.reshape(ab.size - 1, *lam.shape)


def ddim_transfer(
    alpha_bars: np.ndarray, lam: np.ndarray, *, final_alpha_bar: float = 1.0
) -> np.ndarray:
    """DDIM (η=0) transfer function ``H = Π g_i``: the sampler maps ``x_N`` to ``H x_N``."""
    ab = with_final(validate_alpha_bars(alpha_bars, final_alpha_bar), final_alpha_bar)
    lam = _validate_lam(lam)
    return _ddim_transfer_core(ab, lam.reshape(-1)).reshape(lam.shape)


def ddpm_coefficients(
    alpha_bars: np.ndarray, lam: np.ndarray, *, final_alpha_bar: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """DDPM step ``x_{i−1} = b_i x_i + s_i z``: ``b`` of shape ``(N, *lam.shape)``, ``s²`` of
    shape ``(N,)``; index ``j`` is step ``i = j+1``."""
    ab = with_final(validate_alpha_bars(alpha_bars, final_alpha_bar), final_alpha_bar)
    lam = _validate_lam(lam)
    prev, cur = ab[:-1], ab[1:]
    alpha = cur / prev
    s2 = (1 - prev) / (1 - cur) * (1 - alpha)
    a, c, flat = alpha[:, None], cur[:, None], lam.reshape(-1)
    b = (c * flat + a - c) / (np.sqrt(a) * (c * flat + 1 - c))
    return b.reshape(ab.size - 1, *lam.shape), s2


def output_variance(
    alpha_bars: np.ndarray,
    lam: np.ndarray,
    *,
    sampler: SamplerName = "ddim",
    final_alpha_bar: float = 1.0,
    prior_variance: float = 1.0,
) -> np.ndarray:
    """Per-frequency variance of the sampler output (DDIM ``prior_variance·H²``; DDPM recursion)."""
    ab = with_final(validate_alpha_bars(alpha_bars, final_alpha_bar), final_alpha_bar)
    lam = _validate_lam(lam)
    _validate_prior(prior_variance)
    return _output_variance_core(ab, lam.reshape(-1), sampler, prior_variance).reshape(lam.shape)


def ddim_output_variance(
    alpha_bars: np.ndarray,
    lam: np.ndarray,
    *,
    final_alpha_bar: float = 1.0,
    prior_variance: float = 1.0,
) -> np.ndarray:
    """``v = prior_variance · H²`` for DDIM (η=0)."""
    return output_variance(
        alpha_bars,
        lam,
        sampler="ddim",
        final_alpha_bar=final_alpha_bar,
        prior_variance=prior_variance,
    )


def ddpm_output_variance(
    alpha_bars: np.ndarray,
    lam: np.ndarray,
    *,
    final_alpha_bar: float = 1.0,
    prior_variance: float = 1.0,
) -> np.ndarray:
    """DDPM output variance by ``v ← b_i² v + s_i²`` from ``v = prior_variance`` at i = N."""
    return output_variance(
        alpha_bars,
        lam,
        sampler="ddpm",
        final_alpha_bar=final_alpha_bar,
        prior_variance=prior_variance,
    )


def ve_ddim_output_variance(
    sigmas: np.ndarray,
    lam: np.ndarray,
    *,
    final_sigma: float = 0.0,
    prior_variance: float | None = None,
) -> np.ndarray:
    """Output variance of the VE deterministic sampler on increasing ``σ_1 < … < σ_N``.

    Lands on ``final_sigma`` (σ_0, default 0); the prior is ``N(0, prior_variance)``, by default
    ``σ_N²`` (the usual VE/EDM prior). Gains ``g_i = (λ + σ_{i−1}σ_i)/(λ + σ_i²)``.
    """
    s = np.asarray(sigmas, dtype=np.float64)
    if s.ndim != 1 or s.size < 1 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ScheduleGridError("sigmas must be a non-empty 1-D array of positive numbers")
    if np.any(np.diff(s) <= 0):
        raise ScheduleGridError("sigmas must be strictly increasing (σ_1 < … < σ_N)")
    if not (math.isfinite(final_sigma) and 0 <= final_sigma <= s[0]):
        raise ScheduleGridError(f"final_sigma must lie in [0, σ_1 = {s[0]}], got {final_sigma}")
    prior = float(s[-1] ** 2) if prior_variance is None else prior_variance
    _validate_prior(prior)
    lam = _validate_lam(lam)
    full = np.concatenate([[final_sigma], s])
    h = np.ones_like(lam)
    for i in range(1, full.size):
        h = h * (lam + full[i - 1] * full[i]) / (lam + full[i] ** 2)
    return prior * h * h
