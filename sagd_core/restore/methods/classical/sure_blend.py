"""Blending two denoisers by Stein's unbiased risk estimate (SURE) for coloured Gaussian noise.

For ``y = x + n`` with ``n ~ N(0, Σ)`` and an estimator ``x̂(y)`` with Jacobian ``J``,

``E‖x̂ − x‖² = E[‖x̂ − y‖² − tr Σ + 2 tr(Σ J)]``.

The divergence term is measured with a probe ``b ~ N(0, Σ)`` (noise of the estimated power
spectrum): ``E[bᵀ J b] = tr(J Σ)``. For the empirical Wiener stages used here the estimator is
linear in ``y`` once its gains are fixed by the pilot, so ``J b`` is the filter applied to ``b``
(the pilot's own dependence on ``y`` is neglected, as usual for two-stage estimators).

For estimates ``x_k`` of one channel with divergences ``d_k``, a convex blend ``Σ a_k x_k``
(``a_k ≥ 0``, ``Σ a_k = 1``) has the estimated risk ``‖y − Σ a_k x_k‖² + 2 Σ a_k d_k − tr Σ``,
a quadratic in ``a`` minimised over the simplex. The estimators see the same probe, so most of
the probe's sampling error cancels between them. Each channel (opponent channels: independent
noise) gets its own weights; which estimator fits an image (patch DCTs for edges and flat
areas, Fourier tiles for texture and smooth, band-limited content) is decided by the image
itself, with no clean reference.
"""

from __future__ import annotations

import numpy as np

from sagd_core.spectral.fft import irfft2, rfft2

_PROBE_SEED = 20261207


def noise_probe(noise_half: np.ndarray, height: int, width: int) -> np.ndarray:
    """A sample ``(C, H, W)`` of stationary Gaussian noise with the power spectrum
    ``noise_half`` ``(C, H, W//2+1)`` (orthonormal convention), from a fixed seed."""
    white = np.random.default_rng(_PROBE_SEED).standard_normal((noise_half.shape[0], height, width))
    return irfft2(rfft2(white) * np.sqrt(np.maximum(noise_half, 0.0)), height, width)


def divergence(probe: np.ndarray, response: np.ndarray) -> np.ndarray:
    """``bᵀ J b`` per channel ``(C,)``: the probe against the estimator's response to it."""
    return np.einsum("chw,chw->c", probe, response)


def blend_weights(y: np.ndarray, estimates: np.ndarray, divergences: np.ndarray) -> np.ndarray:
    """Per channel, the SURE-optimal convex weights ``(K, C)`` of ``K`` estimates
    ``(K, C, H, W)`` of ``y`` ``(C, H, W)`` with divergences ``(K, C)``.

    The risk of ``Σ_k a_k x_k`` (``Σ a_k = 1``) is the quadratic ``‖y − Σ a_k x_k‖² +
    2 Σ a_k d_k`` (up to a constant); its minimum over the simplex is the best of the
    equality-constrained minima over every subset of the estimates that has non-negative
    weights (``K`` is small)."""
    k, c = estimates.shape[:2]
    out = np.zeros((k, c))
    subsets = [
        [i for i in range(k) if mask >> i & 1] for mask in range(1, 2**k) if mask & (mask - 1)
    ]
    for ch in range(c):
        x = estimates[:, ch].reshape(k, -1)
        r = y[ch].reshape(-1)
        gram = x @ x.T
        lin = x @ r - divergences[:, ch]  # risk(a) = aᵀ G a − 2 aᵀ lin + const

        def risk(a: np.ndarray, gram: np.ndarray = gram, lin: np.ndarray = lin) -> float:
            return float(a @ gram @ a - 2.0 * a @ lin)

        best = int(np.argmin([risk(np.eye(k)[i]) for i in range(k)]))
        weights = np.eye(k)[best]
        for idx in subsets:
            sub = np.ix_(idx, idx)
            # minimise aᵀ G a − 2 aᵀ l subject to Σ a = 1 (Lagrange; KKT system)
            m = len(idx)
            kkt = np.zeros((m + 1, m + 1))
            kkt[:m, :m] = 2.0 * gram[sub]
            kkt[:m, m] = kkt[m, :m] = 1.0
            rhs = np.concatenate([2.0 * lin[idx], [1.0]])
            try:
                sol = np.linalg.solve(kkt, rhs)[:m]
            except np.linalg.LinAlgError:
                continue
            if np.all(sol >= 0.0):
                cand = np.zeros(k)
                cand[idx] = sol
                if risk(cand) < risk(weights):
                    weights = cand
        out[:, ch] = weights
    return out


__all__ = ["blend_weights", "divergence", "noise_probe"]
