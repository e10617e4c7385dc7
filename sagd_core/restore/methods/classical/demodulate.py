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

Everything is separable: a line ``cos(2π(f_y y + f_x x))`` (or its sine) is a sum of two
products of 1-D factors (:func:`line_factors`, :func:`line_terms`), the window is a product of
1-D windows, so every sum of the normal equations over the image is read off one projection
``Fᵀ g G`` of an image ``g`` on the 1-D factors (and their pairwise products for the products of
two lines), and ``A``, ``B`` are ``F M Gᵀ`` for a small matrix ``M``: no ``H·W × 2K`` design
matrix is formed.
"""

from __future__ import annotations

import numpy as np

#: Alternations of fit and division (converged to < 0.05 dB after 4 on the training scenes).
PASSES = 4
#: How far the envelope moves to each new estimate (1: undamped).
STEP = 0.5
#: ``1 + B`` is kept above this (a screen never blanks the image).
MIN_GAIN = 0.2

Term = tuple[float, int, int]


def line_factors(n: int, freqs: list[float]) -> np.ndarray:
    """1-D factors ``[1, cos 2πf₁t, sin 2πf₁t, cos 2πf₂t, …]`` as columns ``(n, 1 + 2K)``."""
    t = 2.0 * np.pi * np.arange(n, dtype=np.float64)
    cols = [np.ones(n)]
    for f in freqs:
        cols += [np.cos(f * t), np.sin(f * t)]
    return np.stack(cols, axis=1)


def line_terms(k: int) -> list[list[Term]]:
    """The constant and each of ``k`` lines' ``cos``, ``sin`` as sums of separable terms
    ``(sign, y factor, x factor)`` over the columns of :func:`line_factors` (column 0 is 1,
    ``2i+1`` is cos, ``2i+2`` is sin): cos(a + b) = cos a cos b − sin a sin b,
    sin(a + b) = sin a cos b + cos a sin b."""
    out = [[(1.0, 0, 0)]]
    for i in range(k):
        c, s = 1 + 2 * i, 2 + 2 * i
        out.append([(1.0, c, c), (-1.0, s, s)])
        out.append([(1.0, s, c), (1.0, c, s)])
    return out


class _Lines:
    """The 1-D factors of the lines along both axes, their pairwise products, and the index
    arithmetic that turns projections on them into the sums of the normal equations."""

    def __init__(self, height: int, width: int, freqs: list[tuple[float, float]]) -> None:
        self.fy = line_factors(height, [f[0] for f in freqs])
        self.fx = line_factors(width, [f[1] for f in freqs])
        self.terms = line_terms(len(freqs))
        m = self.fy.shape[1]
        pairs = [(a, b) for a in range(m) for b in range(a, m)]
        pair = np.empty((m, m), dtype=np.int64)
        for p, (a, b) in enumerate(pairs):
            pair[a, b] = pair[b, a] = p
        first, second = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
        self.fy2 = self.fy[:, first] * self.fy[:, second]  # products of two factors (and 1·f)
        self.fx2 = self.fx[:, first] * self.fx[:, second]
        # Σ g b_i b_j = Σ over the terms of b_i and b_j of sign · P2[pair(ya, ya'), pair(xa, xa')]
        rows, cols, signs, at_i, at_j = [], [], [], [], []
        for i, ti in enumerate(self.terms):
            for j, tj in enumerate(self.terms):
                for si, yi, xi in ti:
                    for sj, yj, xj in tj:
                        at_i.append(i)
                        at_j.append(j)
                        signs.append(si * sj)
                        rows.append(pair[yi, yj])
                        cols.append(pair[xi, xj])
        self._second = (
            np.array(at_i),
            np.array(at_j),
            np.array(signs),
            np.array(rows),
            np.array(cols),
        )

    def first_sums(self, proj: np.ndarray) -> np.ndarray:
        """``Σ g b_i`` for every column ``b_i`` (constant, lines) from ``proj = fyᵀ g fx``."""
        return np.array([sum(s * proj[a, b] for s, a, b in t) for t in self.terms])

    def second_sums(self, proj2: np.ndarray) -> np.ndarray:
        """``Σ g b_i b_j`` ``(1 + 2K)²`` from ``proj2 = fy2ᵀ g fx2``."""
        at_i, at_j, signs, rows, cols = self._second
        n = len(self.terms)
        out = np.zeros((n, n))
        np.add.at(out, (at_i, at_j), signs * proj2[rows, cols])
        return out

    def field(self, coefs: np.ndarray) -> np.ndarray:
        """``Σ_j coefs_j line_j`` ``(H, W)`` (``coefs``: the lines' ``cos, sin`` pairs)."""
        m = self.fy.shape[1]
        mix = np.zeros((m, m))
        for value, t in zip(coefs, self.terms[1:], strict=True):
            for s, a, b in t:
                mix[a, b] += s * value
        return self.fy @ mix @ self.fx.T


def demodulate(
    y: np.ndarray,
    freqs: list[tuple[float, float]],
    window: tuple[np.ndarray, np.ndarray],
    envelope: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Divide the screen out of ``y`` ``(C, H, W)``.

    ``freqs``: the ``K`` lines ``(fy, fx)`` (cycles/pixel); ``window``: the fit weights as 1-D
    factors ``(H,)``, ``(W,)`` (their outer product); ``envelope``: the first guess of the centred
    image ``(C, H, W)``. Returns the estimate ``(C, H, W)`` and the additive ``cos/sin``
    coefficients ``(2K, C)``.

    The normal equations of the columns ``[1, lines, lines · e]`` are assembled by blocks from
    projections on the 1-D factors (module docstring): the blocks of ``[1, lines]`` do not
    change with the envelope and are computed once; the others take two projections of the
    second-order factors per pass."""
    c, h, w = y.shape
    lines = _Lines(h, w, freqs)
    k2 = 2 * len(freqs)
    n1 = 1 + k2
    n = n1 + k2
    wy, wx = window
    weight = np.outer(wy, wx)
    fixed = lines.second_sums(np.outer(lines.fy2.T @ wy, lines.fx2.T @ wx))  # [1, lines]²
    out = np.empty_like(y)
    coefs = np.zeros((k2, c))
    for ch in range(c):
        target = y[ch]
        weighted = weight * target
        rhs_fixed = lines.first_sums(lines.fy.T @ weighted @ lines.fx)
        env = envelope[ch]
        for _ in range(PASSES):
            we = weight * env
            by_e = lines.second_sums(lines.fy2.T @ we @ lines.fx2)  # Σ w e b_i b_j
            by_ee = lines.second_sums(lines.fy2.T @ (we * env) @ lines.fx2)  # Σ w e² b_i b_j
            gram = np.empty((n, n))
            gram[:n1, :n1] = fixed
            gram[:n1, n1:] = by_e[:, 1:]
            gram[n1:, :n1] = by_e[1:, :]
            gram[n1:, n1:] = by_ee[1:, 1:]
            gram[np.diag_indices_from(gram)] += 1e-9 * np.trace(gram) / n
            rhs_e = lines.first_sums(lines.fy.T @ (weighted * env) @ lines.fx)[1:]
            coef = np.linalg.solve(gram, np.concatenate([rhs_fixed, rhs_e]))
            mean = coef[0]
            additive = lines.field(coef[1:n1])
            gain = np.maximum(1.0 + lines.field(coef[n1:]), MIN_GAIN)
            estimate = mean + (target - mean - additive) / gain
            env = (1.0 - STEP) * env + STEP * (estimate - estimate.mean())
        out[ch] = estimate
        coefs[:, ch] = coef[1:n1]
    return out, coefs


__all__ = ["MIN_GAIN", "PASSES", "STEP", "demodulate", "line_factors", "line_terms"]
