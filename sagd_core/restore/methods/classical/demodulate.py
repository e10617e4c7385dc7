"""A multiplicative screen divided out: ``y = μ + (x − μ)(1 + B) + A`` with ``A``, ``B`` sums
of the fitted sinusoids (a halftone screen or moiré multiplies the image, so the interference's
amplitude follows the content, and its sidebands spread the image's whole spectrum around every
line).

Subtracting ``A + B·e`` with an envelope ``e`` taken from the corrupted image leaves those
sidebands in ``e``, and its product with the carriers biases the fit. Here the fit alternates
with the division: fit ``A``, ``B`` by weighted least squares (window :func:`~.sinusoid.hann2d`)
on the current envelope, divide, ``x̂ = μ + (y − μ − A) / (1 + B)``, and move the envelope half
way to the centred ``x̂`` (a damped fixed point: the undamped one overshoots and alternates).
The division also puts back the image's own content in the lines' bins, which a subtraction
fits away.
"""

from __future__ import annotations

import numpy as np

#: Alternations of fit and division (converged to < 0.05 dB after 4 on the training scenes).
PASSES = 4
#: How far the envelope moves to each new estimate (1: undamped).
STEP = 0.5
#: ``1 + B`` is kept above this (a screen never blanks the image).
MIN_GAIN = 0.2


def demodulate(
    y: np.ndarray, carriers: np.ndarray, window: np.ndarray, envelope: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Divide the screen out of ``y`` ``(C, H, W)``.

    ``carriers``: ``(H·W, 2K)`` cos/sin columns of the lines; ``window``: ``(H, W)`` fit
    weights; ``envelope``: the first guess of the centred image ``(C, H, W)``. Returns the
    estimate ``(C, H, W)`` and the additive ``cos/sin`` coefficients ``(2K, C)``.

    The normal equations of the columns ``[1, carriers, carriers · e]`` are assembled by blocks:
    the blocks of ``[1, carriers]`` do not change with the envelope and are computed once; the
    large products run in single precision (the system itself is solved in double)."""
    c, h, w = y.shape
    k2 = carriers.shape[1]
    weight = window.reshape(-1, 1).astype(np.float32)
    car = carriers.astype(np.float32)
    car_w = car * weight
    fixed = np.concatenate([weight, car_w], axis=1).T @ np.concatenate(
        [np.ones_like(weight), car], axis=1
    )  # (1 + 2K)² block of [1, carriers]
    n = 1 + 2 * k2
    out = np.empty_like(y)
    coefs = np.zeros((k2, c))
    for ch in range(c):
        target = y[ch].reshape(-1, 1)
        target32 = target.astype(np.float32)
        env = envelope[ch].reshape(-1, 1)
        rhs_fixed = np.concatenate([weight, car_w], axis=1).T @ target32
        for _ in range(PASSES):
            mod = car * env.astype(np.float32)  # carriers · e
            mod_w = mod * weight
            gram = np.empty((n, n))
            gram[: 1 + k2, : 1 + k2] = fixed
            cross = np.concatenate([weight, car_w], axis=1).T @ mod
            gram[: 1 + k2, 1 + k2 :] = cross
            gram[1 + k2 :, : 1 + k2] = cross.T
            gram[1 + k2 :, 1 + k2 :] = mod_w.T @ mod
            gram[np.diag_indices_from(gram)] += 1e-9 * np.trace(gram) / n
            rhs = np.concatenate([rhs_fixed[:, 0], (mod_w.T @ target32)[:, 0]]).astype(np.float64)
            coef = np.linalg.solve(gram, rhs)
            mean = coef[0]
            additive = carriers @ coef[1 : 1 + k2]
            gain = np.maximum(1.0 + carriers @ coef[1 + k2 :], MIN_GAIN)
            estimate = mean + (target[:, 0] - mean - additive) / gain
            env = (1.0 - STEP) * env + STEP * (estimate - estimate.mean())[:, None]
        out[ch] = estimate.reshape(h, w)
        coefs[:, ch] = coef[1 : 1 + k2]
    return out, coefs


__all__ = ["MIN_GAIN", "PASSES", "STEP", "demodulate"]
