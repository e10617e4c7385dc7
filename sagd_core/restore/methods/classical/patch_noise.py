"""The noise variance of every coefficient of a patch transform, for stationary coloured noise.

A ``p × p`` patch transform has basis functions ``b_k`` (here the separable 2-D DCT-II, rows of
``D ⊗ D``). For stationary noise ``n`` with power spectrum ``N(f)`` (orthonormal DFT convention:
``E|F n(f)|² = N(f)``) the coefficient ``⟨b_k, n⟩`` of any patch has variance

``var_k = Σ_f N(f) |B_k(f)|² = Σ_{a,b} b_k[a] b_k[b] c(b − a)``

with ``B_k`` the orthonormal DFT of ``b_k`` zero-padded to the image and ``c = IDFT(N)`` the
noise's autocovariance (``c(0)`` is the per-pixel variance). The second form needs only the
lags ``|d| < p``: the patch covariance ``C[a, b] = c(b − a)`` and ``var = diag(K C Kᵀ)``. White
noise gives ``var_k = σ²`` for every ``k`` (orthonormal basis); band-limited noise puts its
variance on the basis functions whose spectra overlap the band.
"""

from __future__ import annotations

import math

import numpy as np


def dct_matrix(p: int) -> np.ndarray:
    """The orthonormal DCT-II matrix ``D`` ``(p, p)``: row ``k`` is the ``k``-th basis vector."""
    n = np.arange(p)
    d = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * p)) * np.sqrt(2.0 / p)
    d[0] /= np.sqrt(2.0)
    return d


def dct2_basis(p: int) -> np.ndarray:
    """The 2-D DCT basis ``(p², p²)``: row ``k = u p + v`` is ``D[u] ⊗ D[v]`` (a patch read in
    row-major order)."""
    d = dct_matrix(p)
    return np.kron(d, d)


def autocovariance(noise_half: np.ndarray, height: int, width: int) -> np.ndarray:
    """The autocovariance ``c(d)`` ``(C, H, W)`` of stationary noise with the half-grid power
    spectrum ``noise_half`` ``(C, H, W//2+1)`` (orthonormal convention): ``c = IDFT(N)`` with
    numpy's inverse scaling, so ``c(0)`` is the per-pixel variance (the mean of ``N``). ``N`` is
    real and symmetric, so the inverse real transform of the half grid gives it."""
    return np.fft.irfft2(noise_half, s=(height, width))


def patch_covariance(noise_full: np.ndarray, p: int) -> np.ndarray:
    """Per channel, the covariance ``(C, p², p²)`` of a ``p × p`` patch of stationary noise with
    power spectrum ``noise_full`` ``(C, H, W)`` (full grid, orthonormal convention)."""
    cov = np.fft.ifft2(noise_full).real  # c(d), numpy's inverse scaling: c(0) = mean of N
    return _patch_covariance(cov, p)


def _patch_covariance(cov: np.ndarray, p: int) -> np.ndarray:
    _c, h, w = cov.shape
    yy, xx = np.divmod(np.arange(p * p), p)
    dy = (yy[None, :] - yy[:, None]) % h
    dx = (xx[None, :] - xx[:, None]) % w
    return cov[:, dy, dx]


def coefficient_variances(noise_full: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``var_k`` ``(C, K)`` of every basis function (rows of ``basis`` ``(K, p²)``) for noise of
    power spectrum ``noise_full`` ``(C, H, W)``."""
    return variances_from_autocovariance(np.fft.ifft2(noise_full).real, basis)


def variances_from_autocovariance(cov: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """:func:`coefficient_variances` from the noise's :func:`autocovariance` ``(C, H, W)``."""
    p = math.isqrt(basis.shape[1])
    return np.maximum(np.einsum("ka,cab,kb->ck", basis, _patch_covariance(cov, p), basis), 0.0)


__all__ = [
    "autocovariance",
    "coefficient_variances",
    "dct2_basis",
    "dct_matrix",
    "patch_covariance",
    "variances_from_autocovariance",
]
