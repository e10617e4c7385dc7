"""Distances between the generated and the data Gaussian, per frequency (DESIGN.md §5).

Both distributions are zero-mean and diagonal in the Fourier basis, with variances ``v`` (sampler
output) and ``λ`` (data), so the distances are sums of per-frequency terms::

    W2² = Σ_k (√v_k − √λ_k)²,        KL(N(0,v) ‖ N(0,λ)) = ½ Σ_k [v_k/λ_k − 1 − ln(v_k/λ_k)].

With a data mean ``μ`` that the sampler misses by ``e μ`` (:func:`~.transfer.mean_error_gain`)
both distances gain a term: ``W2²`` adds ``Σ_k e_k² |μ_k|²`` and KL adds ``½ Σ_k e_k² |μ_k|² / λ_k``
(pass ``mean_sq_error = e² |μ|²``).

Frequencies with ``λ = 0`` (e.g. bands with zero SAGD noise after whitening) are excluded. Optional
``weights`` multiply each term: pass the half-grid multiplicity so that sums over the ``rfft2`` half
grid equal full-grid (= pixel-domain) sums (:meth:`Spectrum.flattened`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

LossName = Literal["w2", "kl"]
LOSSES: tuple[str, ...] = ("w2", "kl")


class SpectralLossError(ValueError):
    """Variances or weights that the spectral losses cannot use."""


def _w2_terms(v: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Per-frequency ``(√v − √λ)²``; analytic, so it also accepts complex ``v`` (complex step)."""
    d = np.sqrt(v) - np.sqrt(lam)
    return d * d


def _kl_terms(v: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Per-frequency ``½[v/λ − 1 − ln(v/λ)]`` for ``λ > 0``; analytic in ``v``."""
    ratio = v / lam
    return 0.5 * (ratio - 1 - np.log(ratio))


def mean_terms(mean_sq_error: np.ndarray, lam: np.ndarray, loss: str) -> np.ndarray:
    """Per-frequency cost of a mean error with power ``mean_sq_error`` (``λ > 0``)."""
    if loss == "w2":
        return mean_sq_error
    if loss == "kl":
        return 0.5 * mean_sq_error / lam
    raise SpectralLossError(f"unknown loss {loss!r}; use one of {LOSSES}")


def loss_terms(v: np.ndarray, lam: np.ndarray, loss: str) -> np.ndarray:
    """Unchecked per-frequency terms of ``loss`` (``lam`` must already be > 0)."""
    if loss == "w2":
        return _w2_terms(v, lam)
    if loss == "kl":
        return _kl_terms(v, lam)
    raise SpectralLossError(f"unknown loss {loss!r}; use one of {LOSSES}")


def _prepare(
    v: np.ndarray, lam: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = np.asarray(v, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    w = np.ones(()) if weights is None else np.asarray(weights, dtype=np.float64)
    try:
        v, lam, w = np.broadcast_arrays(v, lam, w)
    except ValueError as exc:
        raise SpectralLossError(
            f"v, lam and weights must broadcast together: {v.shape}, {lam.shape}, {w.shape}"
        ) from exc
    for name, a in (("v", v), ("lam", lam), ("weights", w)):
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise SpectralLossError(f"{name} must be finite and non-negative")
    keep = (lam > 0) & (w > 0)
    return v[keep], lam[keep], w[keep]


def w2_squared(v: np.ndarray, lam: np.ndarray, *, weights: np.ndarray | None = None) -> float:
    """Squared 2-Wasserstein distance ``Σ w (√v − √λ)²`` over frequencies with ``λ > 0``."""
    v, lam, w = _prepare(v, lam, weights)
    return float(np.sum(w * _w2_terms(v, lam)))


def kl_divergence(v: np.ndarray, lam: np.ndarray, *, weights: np.ndarray | None = None) -> float:
    """``KL(N(0,v) ‖ N(0,λ)) = ½ Σ w [v/λ − 1 − ln(v/λ)]`` over ``λ > 0``; ``inf`` if some v = 0."""
    v, lam, w = _prepare(v, lam, weights)
    if np.any(v == 0):
        return float("inf")
    return float(np.sum(w * _kl_terms(v, lam)))


def spectral_loss(
    v: np.ndarray, lam: np.ndarray, loss: LossName, *, weights: np.ndarray | None = None
) -> float:
    """Dispatch to :func:`w2_squared` or :func:`kl_divergence` by name."""
    if loss == "w2":
        return w2_squared(v, lam, weights=weights)
    if loss == "kl":
        return kl_divergence(v, lam, weights=weights)
    raise SpectralLossError(f"unknown loss {loss!r}; use one of {LOSSES}")
