"""Corruption-shaped forward noise (DESIGN.md §4.3, last point), checked exactly on Gaussian images:
a model trained on ``y = x + c`` with forward noise shaped like ``c`` is a clean-data model above
the corruption level, and its one-call read is the clean posterior mean from the whole observation.

The priors are dense Gaussians on 16×16 (``sagd_core.spectral.gaussian_posterior``), stationary or
modulated by an envelope (frequencies correlated: nothing here relies on the Fourier basis
diagonalising the prior). The corruption is band-limited noise, flat in an annulus, and the forward
noise is the band model's (``w = M``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sagd_core.bench.corruption_shaped import envelope, one_call_matrix
from sagd_core.restore.corrupted_oracle import corrupted_oracle_model
from sagd_core.restore.gaussian_oracle import power_law_spectrum
from sagd_core.restore.methods.band_prior import clean_tweedie
from sagd_core.restore.methods.corruption_shaped import one_call_clean_mean
from sagd_core.samplers.common import predict_x0
from sagd_core.samplers.corrupted_read import (
    clean_alpha_bar,
    clean_from_eps,
    clean_read,
    input_scale,
    noise_share,
    read_time,
)
from sagd_core.schedules import make_schedule
from sagd_core.spectral import NoiseSpec, band_mask, noise_weights, parse_band_spec
from sagd_core.spectral.gaussian_posterior import (
    GaussianImagePrior,
    circulant_covariance,
    corrupted_eps_matrix,
    linear_estimator_mse,
    noisy_posterior_mean_matrix,
    notch_matrix,
    out_of_band_fill_matrix,
    posterior_mean_matrix,
    sample_gaussian,
    trusted_basis,
)
from sagd_core.spectral.operator import SpectralNoise
from sagd_core.training.config import ScheduleConfig

SIZE = 16
BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
NOISE = NoiseSpec(kind="band", band=BAND)
ALPHA_BARS = (0.999, 0.9, 0.5, 0.1)
STDS = (0.1, 0.5, 2.0)


@pytest.fixture(scope="module")
def noise_cov() -> np.ndarray:
    return circulant_covariance(noise_weights(NOISE, SIZE, SIZE) ** 2, SIZE, SIZE)


@pytest.fixture(scope="module")
def basis() -> np.ndarray:
    return trusted_basis(1.0 - band_mask(BAND, SIZE, SIZE), SIZE, SIZE)


@pytest.fixture(scope="module", params=["stationary", "modulated"])
def prior(request: pytest.FixtureRequest) -> GaussianImagePrior:
    power = power_law_spectrum(SIZE, SIZE)
    if request.param == "stationary":
        return GaussianImagePrior.stationary(power, SIZE, SIZE)
    return GaussianImagePrior.modulated(power, envelope(SIZE, SIZE), SIZE, SIZE)


def _is_stationary(prior: GaussianImagePrior) -> bool:
    power = power_law_spectrum(SIZE, SIZE)
    return bool(np.allclose(prior.cov, circulant_covariance(power, SIZE, SIZE)))


@pytest.mark.parametrize("s", STDS)
@pytest.mark.parametrize("a", ALPHA_BARS)
def test_the_corrupted_forward_sample_is_a_clean_one_at_the_mapped_level(
    prior: GaussianImagePrior, noise_cov: np.ndarray, a: float, s: float
) -> None:
    """``√(ᾱ'/ᾱ) y_t`` has the covariance of the clean forward sample at ``ᾱ' = ᾱ/(1+ᾱs²)``, a
    level noisier than the corruption's ``1/(1+s²)``."""
    a_clean = clean_alpha_bar(a, s**2)
    assert a_clean < 1.0 / (1.0 + s**2)
    corrupted_t = a * (prior.cov + s**2 * noise_cov) + (1.0 - a) * noise_cov
    clean_t = a_clean * prior.cov + (1.0 - a_clean) * noise_cov
    np.testing.assert_allclose(input_scale(a, s**2) ** 2 * corrupted_t, clean_t, atol=1e-12)


@pytest.mark.parametrize("s", STDS)
@pytest.mark.parametrize("a", ALPHA_BARS)
def test_the_read_of_the_corrupted_data_denoiser_is_the_clean_posterior_mean(
    prior: GaussianImagePrior, noise_cov: np.ndarray, a: float, s: float
) -> None:
    """The exact corrupted-data ε, read with ρ, is ``E[x | y_t]`` (clean prior, whole ``y_t``),
    and equals the clean-data model's Tweedie estimate at ``ᾱ'`` on the rescaled input."""
    n = prior.size
    eps_y = corrupted_eps_matrix(prior.cov, s**2 * noise_cov, noise_cov, a)
    rho = noise_share(a, s**2)
    read = (np.eye(n) - math.sqrt(1.0 - a) / rho * eps_y) / math.sqrt(a)
    truth = noisy_posterior_mean_matrix(prior.cov, (a * s**2 + 1.0 - a) * noise_cov, a)
    np.testing.assert_allclose(read, truth, atol=1e-10)

    a_clean, scale = clean_alpha_bar(a, s**2), input_scale(a, s**2)
    eps_x = corrupted_eps_matrix(prior.cov, 0.0 * noise_cov, noise_cov, a_clean)
    clean_model = (np.eye(n) - math.sqrt(1.0 - a_clean) * eps_x) * scale / math.sqrt(a_clean)
    np.testing.assert_allclose(read, clean_model, atol=1e-10)

    # Without ρ (plain Tweedie) the read is E[y | y_t]: it keeps the corruption's share.
    plain = (np.eye(n) - math.sqrt(1.0 - a) * eps_y) / math.sqrt(a)
    assert np.abs(plain - truth).max() > 1e-6  # far above the 1e-10 of the identity


def test_the_torch_read_matches_the_dense_one(
    prior: GaussianImagePrior, noise_cov: np.ndarray
) -> None:
    """:func:`clean_from_eps` on the oracle model's output at a noisy ``y_t`` is ``E[x | y_t]``."""
    s, t = 0.5, 300
    model = corrupted_oracle_model(prior.cov, NOISE, s, (SIZE, SIZE), band=BAND)
    a = float(model.schedule.alpha_bars[t])
    rng = np.random.default_rng(1)
    y_t = math.sqrt(a) * (
        prior.sample(3, rng) + sample_gaussian(s**2 * noise_cov, 3, rng)
    ) + math.sqrt(1.0 - a) * sample_gaussian(noise_cov, 3, rng)
    y_t_img = torch.as_tensor(y_t.reshape(3, 1, SIZE, SIZE))
    eps = model.eps_predictor(model.noise_op(SIZE, SIZE))(y_t_img, torch.full((3,), float(t)))
    got = clean_from_eps(y_t_img, eps, a, s**2).reshape(3, -1).numpy()
    truth = noisy_posterior_mean_matrix(prior.cov, (a * s**2 + 1.0 - a) * noise_cov, a)
    np.testing.assert_allclose(got, y_t @ truth.T, atol=1e-10)


@pytest.mark.parametrize("s", (0.5,))
def test_the_one_call_read_of_the_observation_tends_to_the_full_posterior_mean(
    prior: GaussianImagePrior, noise_cov: np.ndarray, s: float
) -> None:
    """Called at ``√ᾱ y`` the read is the Wiener filter for level ``s² + (1−ᾱ)/ᾱ`` — exactly; its
    MSE excess over ``E[x | y]`` shrinks as ``t → 0``, and is negligible at the read time."""
    corruption = s**2 * noise_cov
    best = linear_estimator_mse(posterior_mean_matrix(prior.cov, corruption), prior.cov, corruption)
    model = corrupted_oracle_model(prior.cov, NOISE, s, (SIZE, SIZE), band=BAND)
    schedule = model.schedule
    t_read, ok = read_time(schedule, s**2)
    assert ok
    excess, reads = [], []
    basis_images = torch.eye(prior.size, dtype=torch.float64).reshape(-1, 1, SIZE, SIZE)
    for t in (t_read, t_read // 4, 0):
        a = float(schedule.alpha_bars[t])
        out, info = one_call_clean_mean(model, basis_images, s, t=t, dtype=torch.float64)
        assert info["t"] == t
        read = out.reshape(prior.size, prior.size).numpy().T
        inflated = posterior_mean_matrix(prior.cov, (s**2 + (1.0 - a) / a) * noise_cov)
        np.testing.assert_allclose(read, inflated, atol=1e-9)
        excess.append(linear_estimator_mse(read, prior.cov, corruption) / best - 1.0)
        reads.append(read)
    assert excess[0] > excess[1] > excess[2] >= -1e-12
    assert excess[0] < 0.025  # about 0.05 dB at the default read time (κ = 0.3), < 0.1 dB
    default, t = one_call_matrix(prior, NOISE, BAND, s)  # what the benchmark measures
    assert t == t_read
    np.testing.assert_allclose(default, reads[0], atol=1e-12)
    # Fresh noise instead gives E[x | y_t]: first-order worse than the read of y itself.
    a = float(schedule.alpha_bars[t_read])
    noisier = noisy_posterior_mean_matrix(prior.cov, (a * s**2 + 1.0 - a) * noise_cov, a)
    fresh_mse = (
        linear_estimator_mse(math.sqrt(a) * noisier, prior.cov, corruption)
        + float(np.trace(noisier @ ((1.0 - a) * noise_cov) @ noisier.T)) / prior.size
    )
    assert fresh_mse > linear_estimator_mse(reads[0], prior.cov, corruption)


def test_read_where_the_forward_noise_vanishes_it_is_the_full_posterior_mean(
    prior: GaussianImagePrior, noise_cov: np.ndarray
) -> None:
    """A schedule whose first level carries ``1−ᾱ = 1e-10`` of noise: the one-call read of the
    observation is ``E[x | y]`` to numerical precision (the ``ᾱ → 1`` limit of the identity)."""
    s = 0.5
    alpha_bars = 1.0 - np.logspace(-10.0, -0.5, 64)
    schedule = ScheduleConfig(
        name="custom", num_train_timesteps=64, params={"alpha_bars": alpha_bars.tolist()}
    )
    model = corrupted_oracle_model(prior.cov, NOISE, s, (SIZE, SIZE), band=BAND, schedule=schedule)
    basis_images = torch.eye(prior.size, dtype=torch.float64).reshape(-1, 1, SIZE, SIZE)
    out, info = one_call_clean_mean(model, basis_images, s, t=0, dtype=torch.float64)
    read = out.reshape(prior.size, prior.size).numpy().T
    full = posterior_mean_matrix(prior.cov, s**2 * noise_cov)
    np.testing.assert_allclose(read, full, atol=1e-8)
    assert info["clean_alpha_bar"] == pytest.approx(1.0 / (1.0 + s**2))


def test_the_trusted_bands_come_back_exactly_whatever_the_network_says() -> None:
    """ε̂ is kept only where ``w > 0``: a network that answers in the trusted bands (here: the
    identity) cannot change them."""
    noise_op = SpectralNoise(NOISE, SIZE, SIZE, dtype=torch.float64)
    schedule = make_schedule("linear", 1000)
    y = torch.randn(
        2, 1, SIZE, SIZE, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    out = clean_read(lambda x, t: x, y, schedule, noise_op, 40, 0.25)
    keep = torch.as_tensor(1.0 - band_mask(BAND, SIZE, SIZE))

    def trusted(x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(x, norm="ortho") * keep

    torch.testing.assert_close(trusted(out), trusted(y), atol=1e-12, rtol=0)
    assert (out - y).abs().max() > 1e-3  # the band did change


def test_the_read_time_is_the_last_time_within_the_allowed_excess() -> None:
    schedule = make_schedule("linear", 1000)
    level = (1.0 - schedule.alpha_bars) / schedule.alpha_bars
    for s2, excess in ((0.25, 0.1), (1.0, 0.5), (0.01, 0.1)):
        t, ok = read_time(schedule, s2, excess)
        assert ok
        assert level[t] <= excess * s2 < level[t + 1]
    assert read_time(schedule, 1e-8) == (0, False)  # weaker than the schedule's first level
    assert read_time(schedule, 1e6) == (999, True)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            read_time(schedule, bad)
    with pytest.raises(ValueError):
        read_time(schedule, 0.25, 0.0)


def test_the_whole_observation_beats_the_out_of_band_fill_and_the_notch(
    prior: GaussianImagePrior, noise_cov: np.ndarray, basis: np.ndarray
) -> None:
    """Exact MSEs; for a stationary prior the fill *is* the notch (independent frequencies), for
    the modulated one the fill gains on the notch and the posterior mean on both."""
    fill = out_of_band_fill_matrix(prior.cov, basis)
    notch = notch_matrix(basis)
    np.testing.assert_allclose(notch @ fill, notch, atol=1e-10)  # trusted bands kept exactly
    stationary = _is_stationary(prior)
    if stationary:
        np.testing.assert_allclose(fill, notch, atol=1e-10)
    for s in STDS:
        corruption = s**2 * noise_cov
        mse = {
            name: linear_estimator_mse(a, prior.cov, corruption)
            for name, a in [
                ("posterior", posterior_mean_matrix(prior.cov, corruption)),
                ("fill", fill),
                ("notch", notch),
                ("input", np.eye(prior.size)),
            ]
        }
        assert mse["posterior"] < min(mse["fill"], mse["input"])
        if not stationary:
            assert mse["fill"] < mse["notch"]


def test_the_exact_mse_agrees_with_monte_carlo(noise_cov: np.ndarray) -> None:
    power = power_law_spectrum(SIZE, SIZE)
    prior = GaussianImagePrior.modulated(power, envelope(SIZE, SIZE), SIZE, SIZE)
    corruption = 0.25 * noise_cov
    a = posterior_mean_matrix(prior.cov, corruption)
    rng = np.random.default_rng(7)
    x = prior.sample(4000, rng)
    y = x + sample_gaussian(corruption, 4000, rng)
    empirical = float(((y @ a.T - x) ** 2).mean())
    exact = linear_estimator_mse(a, prior.cov, corruption)
    assert abs(empirical / exact - 1.0) < 0.05
    # and the estimate is the posterior mean: its error is uncorrelated with the data
    residual = y @ a.T - x
    assert np.abs(residual.T @ y / 4000).max() < 0.1 * np.abs(y.T @ y / 4000).max()


def test_plain_tweedie_of_a_corrupted_model_is_not_clean(
    prior: GaussianImagePrior, noise_cov: np.ndarray
) -> None:
    """Contrast: ``predict_x0`` on the same ε returns ``E[y | y_t]``, the corrupted mean."""
    s, t = 1.0, 100
    model = corrupted_oracle_model(prior.cov, NOISE, s, (SIZE, SIZE), band=BAND)
    a = float(model.schedule.alpha_bars[t])
    y_t = torch.as_tensor(np.eye(prior.size).reshape(-1, 1, SIZE, SIZE))
    eps = model.eps_predictor(model.noise_op(SIZE, SIZE))(y_t, torch.full((prior.size,), 100.0))
    plain = predict_x0(y_t, eps, a).reshape(prior.size, -1).numpy().T
    cov_y = prior.cov + s**2 * noise_cov
    corrupted_mean = noisy_posterior_mean_matrix(cov_y, (1.0 - a) * noise_cov, a)
    np.testing.assert_allclose(plain, corrupted_mean, atol=1e-10)


def test_the_read_agrees_with_the_band_fills_clean_tweedie(
    prior: GaussianImagePrior, noise_cov: np.ndarray
) -> None:
    """The band fill's correction (``band_prior.clean_tweedie``, written from x̂₀ with ratio
    ``s²``) and :func:`clean_from_eps` are the same identity: for a band model they agree."""
    s, t = 0.5, 200
    model = corrupted_oracle_model(prior.cov, NOISE, s, (SIZE, SIZE), band=BAND)
    a = float(model.schedule.alpha_bars[t])
    rng = np.random.default_rng(5)
    y_t = torch.as_tensor(rng.standard_normal((2, 1, SIZE, SIZE)))
    eps = model.eps_predictor(model.noise_op(SIZE, SIZE))(y_t, torch.full((2,), float(t)))
    mask = torch.tensor(band_mask(BAND, SIZE, SIZE))  # a copy: cached masks are read-only
    theirs = clean_tweedie(predict_x0(y_t, eps, a), y_t, a, s**2, mask)
    torch.testing.assert_close(clean_from_eps(y_t, eps, a, s**2), theirs, atol=1e-10, rtol=0)


def test_gaussian_draws_do_not_depend_on_which_eigenvectors_eigh_returns() -> None:
    """A stationary covariance repeats its eigenvalues, so ``eigh``'s eigenvectors (and any draw
    built on them) depend on the BLAS build and thread count; the draws go through the unique
    symmetric square root instead (a test pinned to one core drew other images than on two)."""
    from sagd_core.spectral.gaussian_posterior import circulant_covariance, sample_gaussian
    from sagd_core.spectral.weights import noise_weights

    weights = noise_weights(NOISE, 8, 8)
    cov = circulant_covariance(weights**2, 8, 8)
    draws = sample_gaussian(cov, 5, np.random.default_rng(3))
    root = circulant_covariance(weights, 8, 8)  # the circulant square root, with no eigh at all
    expected = np.random.default_rng(3).standard_normal((5, 64)) @ root
    np.testing.assert_allclose(draws, expected, atol=1e-6)
