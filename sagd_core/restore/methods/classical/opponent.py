"""An orthonormal opponent colour transform for the noise path.

``A = [[1, 1, 1]/√3, [1, 0, −1]/√2, [1, −2, 1]/√6]`` maps RGB ``(r, g, b)`` to one luminance and
two chroma channels. ``A`` is orthonormal (``A Aᵀ = I``), so

- noise that is independent per channel with the same power spectrum stays independent with
  that spectrum in every opponent channel (its covariance ``σ² I`` maps to ``σ² A Aᵀ = σ² I``),
  and a declared broadband level is the same in all three;
- squared errors are the same in both spaces (a filter's mean squared error does not change);
- natural colour images put most of their energy into the luminance: the chroma channels hold
  little signal, so a shrinkage estimator that compares each coefficient with its noise level
  removes more there.

Noise that is *not* independent per channel (the same field on every channel, say) is handled by
estimating the noise level of each opponent channel separately, after the transform.
"""

from __future__ import annotations

import numpy as np

OPPONENT = np.array(
    [
        [1.0 / np.sqrt(3.0), 1.0 / np.sqrt(3.0), 1.0 / np.sqrt(3.0)],
        [1.0 / np.sqrt(2.0), 0.0, -1.0 / np.sqrt(2.0)],
        [1.0 / np.sqrt(6.0), -2.0 / np.sqrt(6.0), 1.0 / np.sqrt(6.0)],
    ]
)


def to_opponent(x: np.ndarray) -> np.ndarray:
    """RGB ``(3, H, W)`` → opponent channels ``(3, H, W)``; other channel counts unchanged."""
    if x.shape[0] != 3:
        return x
    return np.einsum("ij,jhw->ihw", OPPONENT, x)


def from_opponent(x: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_opponent` (its transpose)."""
    if x.shape[0] != 3:
        return x
    return np.einsum("ji,jhw->ihw", OPPONENT, x)


__all__ = ["OPPONENT", "from_opponent", "to_opponent"]
