"""Exact posterior means of Gaussian images under band corruption, as dense matrices
(DESIGN.md §4.3).

A small image of ``n = H·W`` pixels (one channel) with a Gaussian prior ``x ~ N(0, Σ)`` — stationary
(``Σ`` circulant, diagonal in the Fourier basis) or not (a stationary field times a fixed envelope,
which couples frequencies) — and an additive Gaussian corruption ``c ~ N(0, Σ_c)``, observed as
``y = x + c``. Every estimator compared here is linear, ``x̂ = A y``, so its mean squared error is
exact (no Monte Carlo): ``MSE(A) = [tr((I−A) Σ (I−A)ᵀ) + tr(A Σ_c Aᵀ)] / n``.

Estimators of the clean image from ``y`` when the corruption lives in a band ``M`` (hard mask;
``P = F⁻¹ diag(1−M) F`` projects on the trusted bands, so ``P c = 0``):

- :func:`posterior_mean_matrix`: ``E[x | y] = Σ (Σ + Σ_c)⁻¹ y``, the whole observation, in-band
  part included (what a corruption-shaped model gives in one call, :mod:`sagd_core.samplers.
  corrupted_read`);
- :func:`out_of_band_fill_matrix`: ``E[x | P y] = Σ U (Uᵀ Σ U)⁻¹ Uᵀ y`` with ``P = U Uᵀ``: the
  trusted bands kept exactly and the band filled from the prior given them (the band model's fill,
  which discards the in-band observation). For a stationary prior the frequencies are
  independent, so the fill is the prior mean (0) and this equals the notch;
- :func:`notch_matrix`: ``P`` (the band set to its prior mean, 0).

:func:`corrupted_eps_matrix` is the exact ε-predictor of a SAGD model trained on the *corrupted*
images with forward noise covariance ``Σ_w``; :func:`noisy_posterior_mean_matrix` the clean
posterior mean given ``z = √ᾱ x + n``. Matrices are float64 and meant for grids up to about 64×64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def circulant_covariance(power: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``(n, n)`` matrix ``F⁻¹ diag(power) F`` for a real symmetric ``power`` on the ``rfft2``
    half grid ``(H, W//2+1)`` (orthonormal transforms): a stationary covariance."""
    if power.shape != (height, width // 2 + 1):
        raise ValueError(f"power of shape {power.shape} given for a {height}×{width} grid")
    n = height * width
    basis = np.eye(n).reshape(n, height, width)
    spec = np.fft.rfft2(basis, norm="ortho") * power
    rows = np.fft.irfft2(spec, s=(height, width), norm="ortho").reshape(n, n)
    return 0.5 * (rows + rows.T)  # symmetric up to rounding; make it exactly so


@dataclass(frozen=True)
class GaussianImagePrior:
    """``x ~ N(0, cov)`` on a ``height × width`` grid, pixels flattened row-major."""

    height: int
    width: int
    cov: np.ndarray

    def __post_init__(self) -> None:
        n = self.height * self.width
        if self.cov.shape != (n, n):
            raise ValueError(f"covariance of shape {self.cov.shape} for {n} pixels")

    @property
    def size(self) -> int:
        return self.height * self.width

    @classmethod
    def stationary(cls, power: np.ndarray, height: int, width: int) -> GaussianImagePrior:
        """The stationary prior of half-grid power spectrum ``power``."""
        return cls(height, width, circulant_covariance(power, height, width))

    @classmethod
    def modulated(
        cls, power: np.ndarray, envelope: np.ndarray, height: int, width: int
    ) -> GaussianImagePrior:
        """``x = m ⊙ g`` with ``g`` stationary of spectrum ``power`` and a fixed envelope ``m``
        ``(H, W)``: ``Σ = diag(m) C diag(m)``, not diagonal in the Fourier basis."""
        if envelope.shape != (height, width):
            raise ValueError(f"envelope of shape {envelope.shape} for a {height}×{width} grid")
        m = envelope.reshape(-1)
        return cls(height, width, circulant_covariance(power, height, width) * np.outer(m, m))

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, n)`` draws (:func:`sample_gaussian`)."""
        return sample_gaussian(self.cov, count, rng)


def sample_gaussian(cov: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, n)`` draws of ``N(0, cov)`` through the symmetric square root ``S = V √Λ Vᵀ``
    (``cov`` may be singular). ``S`` is unique, unlike ``V √Λ``: where eigenvalues repeat (a
    stationary covariance repeats nearly all of them) the eigenvectors ``eigh`` returns depend
    on the BLAS build and its thread count, and with them the draws (a test pinned to one core
    drew other images than on two)."""
    vals, vecs = np.linalg.eigh(cov)
    root = (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T
    return rng.standard_normal((count, cov.shape[0])) @ root


def trusted_basis(trusted: np.ndarray, height: int, width: int) -> np.ndarray:
    """``U`` ``(n, k)`` with orthonormal columns and ``U Uᵀ = P = F⁻¹ diag(trusted) F``, for a
    hard (0/1) half-grid mask ``trusted`` (1 where the image is trusted)."""
    if not np.all((trusted == 0.0) | (trusted == 1.0)):
        raise ValueError("the trusted mask must be hard (0 or 1): a soft mask is no projector")
    vals, vecs = np.linalg.eigh(circulant_covariance(trusted, height, width))
    return np.asarray(vecs[:, vals > 0.5])


def posterior_mean_matrix(prior_cov: np.ndarray, corruption_cov: np.ndarray) -> np.ndarray:
    """``A`` with ``E[x | y] = A y`` for ``y = x + c``: ``Σ (Σ + Σ_c)⁻¹`` (the Wiener filter with
    the whole observation)."""
    # Σ (Σ + Σ_c)⁻¹ = [(Σ + Σ_c)⁻¹ Σ]ᵀ since both are symmetric.
    return np.asarray(np.linalg.solve(prior_cov + corruption_cov, prior_cov).T)


def out_of_band_fill_matrix(prior_cov: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``A`` with ``E[x | P y] = A y`` (``P = U Uᵀ``, ``U`` = ``basis``): the trusted bands of
    ``y`` kept exactly, the band filled from the prior given them; the in-band observation is
    not used."""
    gram = basis.T @ prior_cov @ basis
    return np.asarray(prior_cov @ basis @ np.linalg.solve(gram, basis.T))


def notch_matrix(basis: np.ndarray) -> np.ndarray:
    """``P = U Uᵀ``: the band set to its prior mean (0)."""
    return np.asarray(basis @ basis.T)


def linear_estimator_mse(
    estimator: np.ndarray, prior_cov: np.ndarray, corruption_cov: np.ndarray
) -> float:
    """Exact per-pixel MSE of ``x̂ = A y`` for ``y = x + c``, ``x ⊥ c`` (module docstring)."""
    n = prior_cov.shape[0]
    residual = np.eye(n) - estimator
    bias = float(((residual @ prior_cov) * residual).sum())  # tr(R Σ Rᵀ)
    noise = float(((estimator @ corruption_cov) * estimator).sum())
    return (bias + noise) / n


def corrupted_eps_matrix(
    prior_cov: np.ndarray, corruption_cov: np.ndarray, noise_cov: np.ndarray, alpha_bar: float
) -> np.ndarray:
    """The exact ε-predictor ``ε̂ = E[ε_w | y_t] = B y_t`` of a model trained on the corrupted
    images ``y ~ N(0, Σ + Σ_c)`` with forward noise ``Σ_w``:
    ``y_t = √ᾱ y + √(1−ᾱ) ε_w`` gives ``B = √(1−ᾱ) Σ_w (ᾱ Σ_y + (1−ᾱ) Σ_w)⁻¹``."""
    cov_y = prior_cov + corruption_cov
    cov_t = alpha_bar * cov_y + (1.0 - alpha_bar) * noise_cov
    return np.asarray(np.sqrt(1.0 - alpha_bar) * np.linalg.solve(cov_t, noise_cov).T)


def noisy_posterior_mean_matrix(
    prior_cov: np.ndarray, noise_cov: np.ndarray, alpha_bar: float
) -> np.ndarray:
    """``A`` with ``E[x | z] = A z`` for ``z = √ᾱ x + n``, ``n ~ N(0, noise_cov)``:
    ``√ᾱ Σ (ᾱ Σ + N)⁻¹``."""
    cov_z = alpha_bar * prior_cov + noise_cov
    return np.asarray(np.sqrt(alpha_bar) * np.linalg.solve(cov_z, prior_cov).T)


def mse_db(mse: float) -> float:
    """``10 log10(MSE)``: lower is better; differences are gains in dB."""
    return float(10.0 * np.log10(mse))


__all__ = [
    "GaussianImagePrior",
    "circulant_covariance",
    "corrupted_eps_matrix",
    "linear_estimator_mse",
    "mse_db",
    "noisy_posterior_mean_matrix",
    "notch_matrix",
    "out_of_band_fill_matrix",
    "posterior_mean_matrix",
    "sample_gaussian",
    "trusted_basis",
]
