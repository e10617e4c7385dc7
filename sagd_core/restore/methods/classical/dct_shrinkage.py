"""Coloured-noise denoising by shrinkage of overlapping patch DCTs (two stages, as in BM3D but
without block matching: each patch is its own group). The image is padded (mirrored) at the
bottom and right until the patches of a stage tile it exactly.

Every ``p × p`` patch at a stride of ``s`` pixels is transformed by the orthonormal 2-D DCT; the
noise variance ``var_k`` of coefficient ``k`` comes from the noise power spectrum
(:mod:`~.patch_noise`), so band-limited noise is judged per basis function.

1. *Hard thresholding*: coefficients with ``|X_k| ≤ λ √var_k`` are set to zero (the DC is
   kept). Each patch's estimate has residual noise variance about ``Σ_{kept} var_k``; patches
   are put back weighted by the inverse of it (times a Kaiser window) and averaged per pixel.
2. *Empirical Wiener*: with ``P_k`` the coefficients of the stage-1 estimate's patch, the noisy
   coefficients are scaled by ``P_k² / (P_k² + var_k)`` and put back weighted by
   ``1 / Σ_k g_k² var_k`` (the residual noise variance of the filtered patch).

A patch that sees only smooth content keeps few coefficients and is weighted up; one across an
edge keeps many and is weighted down, so each pixel's estimate leans on the patches that explain
it sparsely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sagd_core.restore.methods.classical.patch_noise import coefficient_variances, dct2_basis

#: Patch side (pixels).
PATCH = 8
#: Strides of the two stages (pixels). On the training scenes (band noise, 256² and 512²) 3/2
#: lost 0.1 dB and 2/1 gained 0.15 dB against 2/2, at 0.9× and 1.9× its time.
STRIDE_HARD = 2
STRIDE_WIENER = 2
#: Hard threshold in noise standard deviations (BM3D's 2.7).
THRESHOLD = 2.7
#: Kaiser window parameter of the aggregation (BM3D's 2).
KAISER_BETA = 2.0
#: Patches per block of the vectorised transforms (memory bound).
_BLOCK = 16384
#: Stage 1's patch coefficients are kept for stage 2 (same grid) up to this many bytes per
#: channel; larger images transform their patches again.
_REUSE_BYTES = 64 << 20


class _Grid:
    """The patch origins of one stage: every ``s`` pixels on an image padded (reflected at the
    bottom and right) until the last patch is flush with its edge, in row blocks."""

    def __init__(self, h: int, w: int, p: int, s: int) -> None:
        self.p, self.s, self.h, self.w = p, s, h, w
        self.ny = -(-(h - p) // s) + 1
        self.nx = -(-(w - p) // s) + 1
        self.padded = (p + s * (self.ny - 1), p + s * (self.nx - 1))
        rows = max(1, _BLOCK // self.nx)
        self.blocks = [(i, min(i + rows, self.ny)) for i in range(0, self.ny, rows)]

    def pad(self, img: np.ndarray) -> np.ndarray:
        ph, pw = self.padded[0] - self.h, self.padded[1] - self.w
        return np.pad(img, ((0, ph), (0, pw)), mode="symmetric") if ph or pw else img

    def patches(self, img: np.ndarray, block: tuple[int, int]) -> np.ndarray:
        """The patches ``(rows · nx, p²)`` of the row block ``block`` of ``img`` (padded)."""
        p, s = self.p, self.s
        view = np.lib.stride_tricks.sliding_window_view(img, (p, p))
        return view[block[0] * s : (block[1] - 1) * s + 1 : s, ::s].reshape(-1, p * p)

    def put_back(self, acc: np.ndarray, pixels: np.ndarray, block: tuple[int, int]) -> None:
        """Add the patches ``pixels`` ``(p², rows · nx)`` (pixel-major: row ``i p + j`` holds
        pixel ``(i, j)`` of every patch of the block) to ``acc`` (padded)."""
        p, s = self.p, self.s
        rows = block[1] - block[0]
        vals = pixels.reshape(p, p, rows, self.nx)
        y0 = block[0] * s
        ys, xs = s * (rows - 1) + 1, s * (self.nx - 1) + 1
        for i in range(p):
            for j in range(p):
                acc[y0 + i : y0 + i + ys : s, j : j + xs : s] += vals[i, j]

    def weight_sum(self, weights: np.ndarray, window: np.ndarray) -> np.ndarray:
        """``Σ_patches w · window(x − origin)`` on the padded image: the patch weights on the
        origin grid, spread by the (separable) window: ``p`` shifted additions per axis."""
        p, s = self.p, self.s
        k_y = (window[:, p // 2] / window[p // 2, p // 2]).astype(np.float32)
        k_x = window[p // 2].astype(np.float32)  # float32 factors keep the sums in float32
        rows = np.zeros((self.padded[0], self.nx), dtype=np.float32)
        for i in range(p):
            rows[i : i + s * (self.ny - 1) + 1 : s] += k_y[i] * weights
        out = np.zeros(self.padded, dtype=np.float32)
        for j in range(p):
            out[:, j : j + s * (self.nx - 1) + 1 : s] += k_x[j] * rows
        return out


def _kaiser(p: int, beta: float) -> np.ndarray:
    k = np.kaiser(p, beta)
    return np.outer(k, k)


def _stage(
    y: np.ndarray,
    pilot: np.ndarray | None,
    var: np.ndarray,
    basis: np.ndarray,
    grid: _Grid,
    window: np.ndarray,
    threshold: float,
    coefs: list[np.ndarray] | None = None,
    keep: bool = False,
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """One stage on one channel ``y`` (float32, padded to ``grid``): hard thresholding when
    ``pilot`` is None, else the empirical Wiener filter with ``pilot``'s coefficients (float32,
    padded). ``coefs``: ``y``'s coefficients per row block when already known (stage 1's on the
    same grid; used up); ``keep``: return them. Returns the estimate on the padded grid (float32)
    and the kept coefficients (or None)."""
    acc = np.zeros(grid.padded, dtype=np.float32)
    kt = basis.T.astype(np.float32)
    # synthesis and the window in one: the rows of the result are pixels of the patches
    synth = (basis * window.reshape(1, -1)).T.astype(np.float32)
    var32 = var.astype(np.float32)
    noise_free = var32 <= 0
    any_free = bool(noise_free.any())
    floor = np.float32(1e-12 * max(float(var.sum()), 1e-30))
    thr = (threshold * np.sqrt(var)).astype(np.float32)
    kept: list[np.ndarray] | None = [] if keep else None
    all_weights = np.empty((grid.ny, grid.nx), dtype=np.float32)
    for index, block in enumerate(grid.blocks):
        coef = grid.patches(y, block) @ kt if coefs is None else coefs[index]
        if pilot is None:
            mask = np.abs(coef) > thr
            mask[:, 0] = True
            if kept is not None:
                kept.append(coef)
                coef = coef * mask
            else:
                coef *= mask
            resid = mask @ var32
        else:
            gain = grid.patches(pilot, block) @ kt
            gain *= gain
            gain /= gain + var32
            if any_free:
                gain[:, noise_free] = 1.0
            coef *= gain
            gain *= gain
            resid = gain @ var32
        weights = 1.0 / np.maximum(resid, floor)
        coef *= weights[:, None]
        grid.put_back(acc, synth @ coef.T, block)
        all_weights[block[0] : block[1]] = weights.reshape(-1, grid.nx)
    acc /= np.maximum(grid.weight_sum(all_weights, window), np.float32(1e-30))
    return acc, kept


@dataclass
class DctEstimate:
    """Per channel ``(C, H, W)``: the hard-thresholding pilot and the Wiener estimate."""

    pilot: np.ndarray
    estimate: np.ndarray


def dct_denoise(
    y: np.ndarray,
    noise_full: np.ndarray | None,
    *,
    variances: np.ndarray | None = None,
    patch: int = PATCH,
    strides: tuple[int, int] = (STRIDE_HARD, STRIDE_WIENER),
    threshold: float = THRESHOLD,
    beta: float = KAISER_BETA,
) -> DctEstimate:
    """Denoise ``y`` ``(C, H, W)`` (each channel on its own) for stationary noise of power
    spectrum ``noise_full`` ``(C, H, W)`` (full grid, orthonormal convention); needs
    ``min(H, W) ≥ patch``. ``variances``: the coefficients' noise variances ``(C, patch²)``
    when already known (:func:`~.patch_noise.coefficient_variances`; ``noise_full`` is then
    not read)."""
    _c, h, w = y.shape
    basis = dct2_basis(patch)
    if variances is None:
        if noise_full is None:
            raise ValueError("dct_denoise needs noise_full or variances")
        variances = coefficient_variances(noise_full, basis)
    window = _kaiser(patch, beta)
    hard = _Grid(h, w, patch, strides[0])
    soft = _Grid(h, w, patch, strides[1])
    # one grid for both stages: stage 1's transforms of the patches serve stage 2 as well
    reuse = strides[0] == strides[1] and hard.ny * hard.nx * patch**2 * 4 <= _REUSE_BYTES
    pilot = np.array(y, dtype=np.float64)
    out = pilot.copy()
    for ch in range(y.shape[0]):
        var = variances[ch]
        if not np.any(var > 1e-14 * max(float(np.abs(y[ch]).max()) ** 2, 1e-30)):
            continue  # no noise in this channel: the identity
        y32 = y[ch].astype(np.float32)
        first, coefs = _stage(hard.pad(y32), None, var, basis, hard, window, threshold, keep=reuse)
        pilot[ch] = first[:h, :w]
        second, _ = _stage(
            soft.pad(y32), soft.pad(first[:h, :w]), var, basis, soft, window, threshold, coefs
        )
        out[ch] = second[:h, :w]
    return DctEstimate(pilot, out)


__all__ = [
    "KAISER_BETA",
    "PATCH",
    "STRIDE_HARD",
    "STRIDE_WIENER",
    "THRESHOLD",
    "DctEstimate",
    "dct_denoise",
]
