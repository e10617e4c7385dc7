"""Choosing the one-call read level from corrupted images only (``sagd_core.calibration.
one_call_read``): Stein's unbiased risk estimate of the read's clean MSE agrees with the exact MSE
on Gaussian images (the exact corrupted-data denoiser standing in for the network), and the
choice prefers the read that is better against the clean images it never sees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sagd_core.bench.corruption_shaped import make_prior
from sagd_core.calibration.one_call_read import choose_read_excess, sure_mse
from sagd_core.restore.corrupted_oracle import corrupted_oracle_model
from sagd_core.restore.models import LoadedModel
from sagd_core.samplers.corrupted_read import read_time
from sagd_core.spectral import NoiseSpec, noise_weights, parse_band_spec
from sagd_core.spectral.gaussian_posterior import (
    GaussianImagePrior,
    circulant_covariance,
    linear_estimator_mse,
    posterior_mean_matrix,
    sample_gaussian,
)

SIZE, STD = 16, 0.3
BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
NOISE = NoiseSpec(kind="band", band=BAND)


@dataclass(frozen=True)
class Case:
    prior: GaussianImagePrior
    noise_cov: np.ndarray
    model: LoadedModel
    corrupted: torch.Tensor

    def exact_read_mse(self, excess: float) -> float:
        """The read at ``excess`` is the Wiener filter at the inflated level (identity tests)."""
        t, _ = read_time(self.model.schedule, STD**2, excess)
        a = float(self.model.schedule.alpha_bars[t])
        read = posterior_mean_matrix(self.prior.cov, (STD**2 + (1.0 - a) / a) * self.noise_cov)
        return linear_estimator_mse(read, self.prior.cov, STD**2 * self.noise_cov)


@pytest.fixture(scope="module")
def case() -> Case:
    prior = make_prior("modulated", SIZE)
    noise_cov = circulant_covariance(noise_weights(NOISE, SIZE, SIZE) ** 2, SIZE, SIZE)
    rng = np.random.default_rng(11)
    y = prior.sample(400, rng) + sample_gaussian(STD**2 * noise_cov, 400, rng)
    model = corrupted_oracle_model(prior.cov, NOISE, STD, (SIZE, SIZE), band=BAND)
    return Case(prior, noise_cov, model, torch.as_tensor(y.reshape(-1, 1, SIZE, SIZE)))


@pytest.mark.parametrize("excess", [0.1, 1000.0])
def test_sure_is_the_clean_mse_of_the_read(case: Case, excess: float) -> None:
    gen = torch.Generator().manual_seed(0)
    sure, t = sure_mse(
        case.model, case.corrupted, STD, excess=excess, generator=gen, dtype=torch.float64
    )
    assert t == read_time(case.model.schedule, STD**2, excess)[0]
    assert sure == pytest.approx(case.exact_read_mse(excess), rel=0.08)


def test_the_choice_is_the_read_that_is_better_on_clean_images(case: Case) -> None:
    candidates = (1000.0, 0.1)
    choice = choose_read_excess(
        case.model, case.corrupted, STD, candidates=candidates, dtype=torch.float64
    )
    best = min(candidates, key=case.exact_read_mse)
    assert case.exact_read_mse(1000.0) > 1.2 * case.exact_read_mse(0.1)  # a real difference
    assert choice.excess == best
    assert choice.t == read_time(case.model.schedule, STD**2, best)[0]
    assert set(choice.sure) == set(candidates)
    with pytest.raises(ValueError):
        choose_read_excess(case.model, case.corrupted, STD, candidates=())
