"""The corruption level ``s²`` from corrupted images alone (``sagd_core.spectral.
corruption_level``), which the one-call clean read needs: band-limited noise of known std on
Gaussian ``1/f²`` images, then the estimate drives the read (``sagd_core.restore.methods.
corruption_shaped``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sagd_core.bench.corruption_shaped import make_prior
from sagd_core.data import apply_corruption, parse_corruption
from sagd_core.restore.corrupted_oracle import corrupted_oracle_model
from sagd_core.restore.gaussian_oracle import sample_gaussian_images
from sagd_core.restore.methods.band_prior import corruption_ratio
from sagd_core.restore.methods.corruption_shaped import one_call_clean_mean
from sagd_core.spectral import NoiseSpec, noise_weights, parse_band_spec
from sagd_core.spectral.corruption_level import estimate_corruption_level
from sagd_core.spectral.gaussian_posterior import (
    circulant_covariance,
    linear_estimator_mse,
    notch_matrix,
    posterior_mean_matrix,
    trusted_basis,
)
from sagd_core.spectral.masks import band_mask

SIZE = 32
BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
NOISE = NoiseSpec(kind="band", band=BAND)


def _corrupted(std: float, count: int = 64, seed: int = 0) -> np.ndarray:
    """The project's own ``band_noise`` corruption (what training on corrupted folders uses)."""
    clean = sample_gaussian_images(count, 1, SIZE, SIZE, seed=seed)
    corruption = parse_corruption({"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": std})
    return apply_corruption(clean, corruption, seed=seed + 1).astype(np.float64)


def test_band_noise_of_gamma_is_the_band_models_forward_noise_times_gamma() -> None:
    """``band_noise`` with ``gamma = s`` is ``c ~ N(0, s² Σ_w)`` for the band model's ``w``: a band
    model trained on it is corruption-shaped, with ``corruption_std = gamma``."""
    std = 0.3
    noise = _corrupted(std, count=400) - _corrupted(0.0, count=400)
    power = (np.abs(np.fft.rfft2(noise, norm="ortho")) ** 2).mean(axis=(0, 1))
    expected = std**2 * noise_weights(NOISE, SIZE, SIZE) ** 2
    inside = expected > 0
    assert np.all(power[~inside] < 1e-10)
    assert power[inside].mean() == pytest.approx(expected[inside].mean(), rel=0.03)


@pytest.mark.parametrize("std", [0.1, 0.3])
def test_the_level_is_the_band_power_above_the_trend(std: float) -> None:
    weights = noise_weights(NOISE, SIZE, SIZE)
    images = _corrupted(std)
    level = estimate_corruption_level(images, BAND, weights)
    assert level.variance == pytest.approx(std**2, rel=0.15)
    assert level.slope == pytest.approx(-2.0, abs=0.3)  # the prior's 1/r² spectrum
    assert 0.0 < level.excess < 1.0
    # the raw band-to-noise ratio counts the clean band as corruption
    raw = corruption_ratio(images, BAND, weights)
    assert abs(level.variance - std**2) < abs(raw - std**2)


def test_clean_images_have_almost_no_corruption() -> None:
    level = estimate_corruption_level(_corrupted(0.0), BAND, noise_weights(NOISE, SIZE, SIZE))
    assert level.variance < 0.1 * 0.1**2  # well below the weakest level tested above


def test_refuses_what_it_cannot_estimate() -> None:
    weights = noise_weights(NOISE, SIZE, SIZE)
    with pytest.raises(ValueError):
        estimate_corruption_level(np.zeros((SIZE, SIZE)), BAND, weights)
    with pytest.raises(ValueError):
        estimate_corruption_level(_corrupted(0.1, count=2), BAND, weights[:-1])
    wide = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.02, "high": 0.7}]})
    with pytest.raises(ValueError):
        estimate_corruption_level(_corrupted(0.1, count=2), wide, weights)


def test_estimated_level_then_one_call_read_restores_like_the_posterior_mean() -> None:
    """The whole network-free path on corrupted images only: estimate ``s`` from a folder of
    them, then read each with the corrupted-data model (the exact one standing in for the net)."""
    size, std = 16, 0.3
    prior = make_prior("stationary", size)
    rng = np.random.default_rng(3)
    clean = prior.sample(300, rng).reshape(-1, 1, size, size)
    corruption = parse_corruption({"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": std})
    corrupted = apply_corruption(clean, corruption, seed=4).astype(np.float64)
    weights = noise_weights(NOISE, size, size)
    level = estimate_corruption_level(corrupted[:200], BAND, weights)
    assert level.variance == pytest.approx(std**2, rel=0.2)

    model = corrupted_oracle_model(prior.cov, NOISE, std, (size, size), band=BAND)
    held_out = torch.as_tensor(corrupted[200:])
    estimate, info = one_call_clean_mean(
        model, held_out, math.sqrt(level.variance), dtype=torch.float64
    )
    assert info["in_range"]
    mse = float(((estimate.numpy() - clean[200:]) ** 2).mean())
    noise_cov = circulant_covariance(weights**2, size, size)
    best = linear_estimator_mse(
        posterior_mean_matrix(prior.cov, std**2 * noise_cov), prior.cov, std**2 * noise_cov
    )
    notch = linear_estimator_mse(
        notch_matrix(trusted_basis(1.0 - band_mask(BAND, size, size), size, size)),
        prior.cov,
        std**2 * noise_cov,
    )
    assert mse == pytest.approx(best, rel=0.15)  # Monte Carlo over 100 images, and ŝ
    assert mse < 0.8 * notch  # exact ratio 0.68 at this level
