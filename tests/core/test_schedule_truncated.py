"""Schedules for the band fill's truncated chain (issue #4 in restoration): the closed forms of
the chain from the pure-noise start to the read level, the fit, and the band model's N-step
``fit`` plan."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sagd_core.bench.schedule_restore import image_seed
from sagd_core.planning import fill as fill_plan
from sagd_core.restore.gaussian_oracle import oracle_model, sample_gaussian_images
from sagd_core.restore.methods.chains import MEAN_ALPHA_BAR
from sagd_core.restore.plans import plan_source
from sagd_core.restore.request import RestoreSchedule
from sagd_core.schedule_design.fitted import ScheduleFitError
from sagd_core.schedule_design.spectrum import Spectrum, estimate_spectrum
from sagd_core.schedule_design.truncated import (
    TruncatedChainProblem,
    chain_moments,
    fit_truncated_chain,
)
from sagd_core.spectral import NoiseSpec, parse_band_spec

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
SPECTRUM = {"scale": 0.002}


def _simulate(
    levels: np.ndarray, lam: float, mu: float, n: int, seed: int = 0
) -> tuple[float, float]:
    """Mean and variance at the read level of the ancestral chain with the exact denoiser,
    started from pure noise ``N(0, 1 − ᾱ_top)`` (scalar, whitened)."""
    rng = np.random.default_rng(seed)
    x = np.sqrt(1 - levels[0]) * rng.standard_normal(n)
    for cur, prev in itertools.pairwise(levels):
        x0 = mu + np.sqrt(cur) * lam / (cur * lam + 1 - cur) * (x - np.sqrt(cur) * mu)
        eps = (x - np.sqrt(cur) * x0) / np.sqrt(1 - cur)
        s2 = (1 - prev) / (1 - cur) * (1 - cur / prev)
        x = np.sqrt(prev) * x0 + np.sqrt(1 - prev - s2) * eps + np.sqrt(s2) * rng.standard_normal(n)
    return float(x.mean()), float(x.var())


@pytest.mark.parametrize("lam", [0.3, 1.0, 4.0])
def test_chain_moments_match_a_monte_carlo_run(lam: float) -> None:
    levels = np.array([0.002, 0.01, 0.04, 0.07, 0.1])
    mu = 1.5
    v, gain = chain_moments(levels, np.array([lam]))
    mean, var = _simulate(levels, lam, mu, 400_000)
    assert var == pytest.approx(v[0], rel=0.01)
    expected_mean = np.sqrt(0.1) * mu - gain[0] * np.sqrt(levels[0]) * mu
    assert mean == pytest.approx(expected_mean, abs=0.006)
    # A single call (the read at the start) keeps the start's variance and misses √ᾱ μ.
    v1, g1 = chain_moments(np.array([0.1]), np.array([lam]))
    assert v1[0] == pytest.approx(0.9) and g1[0] == 1.0


def _problem(loss: str = "w2", start_mean: str = "band") -> TruncatedChainProblem:
    images = sample_gaussian_images(64, 1, 16, 16, seed=0, **SPECTRUM)
    spectrum: Spectrum = estimate_spectrum(images)
    w = np.zeros_like(spectrum.lam[0])
    w[3:5, :] = 1.0  # a band of noise
    return TruncatedChainProblem.build(
        spectrum.whiten(w), w**2, stop=0.1, loss=loss, start_mean=start_mean
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(("loss", "start_mean"), [("w2", "band"), ("kl", "data"), ("w2", "none")])
def test_fit_ends_at_the_read_level_and_beats_its_start(loss: str, start_mean: str) -> None:
    problem = _problem(loss, start_mean)
    init = np.array([1e-4, 3e-4, 1e-3, 5e-3, 0.03, 0.1])
    fit = fit_truncated_chain(problem, 6, alpha_bar_min=4e-5, init=init)
    assert fit.calls == 6 and fit.levels[-1] == 0.1
    assert np.all(np.diff(fit.levels) > 0) and fit.levels[0] >= 4e-5 * (1 - 1e-9)
    assert fit.loss_init == pytest.approx(problem.value(init))
    assert fit.loss_final == pytest.approx(problem.value(fit.levels))
    assert fit.loss_final < 0.5 * fit.loss_init
    more = fit_truncated_chain(problem, 12, alpha_bar_min=4e-5)
    assert more.loss_final < fit.loss_final  # more calls, closer to the noised data
    one = fit_truncated_chain(problem, 1, alpha_bar_min=4e-5)
    assert one.levels.tolist() == [0.1]


def test_fit_rejects_bad_settings() -> None:
    problem = _problem()
    with pytest.raises(ScheduleFitError):
        fit_truncated_chain(problem, 0, alpha_bar_min=1e-4)
    with pytest.raises(ScheduleFitError):
        fit_truncated_chain(problem, 3, alpha_bar_min=0.2)
    with pytest.raises(ScheduleFitError, match="read level"):
        fit_truncated_chain(problem, 3, alpha_bar_min=1e-4, init=np.array([0.01, 0.05, 0.2]))
    with pytest.raises(ScheduleFitError, match="start_mean"):
        _problem(start_mean="other")


def test_band_model_fit_plan_spends_the_models_calls_up_to_the_read() -> None:
    model = oracle_model("band", NoiseSpec(kind="band", band=BAND), band=BAND, spectrum=SPECTRUM)
    model.meta["spectrum"] = estimate_spectrum(
        sample_gaussian_images(64, 1, 32, 32, seed=0, **SPECTRUM)
    ).to_dict()
    fill_plan.clear_cache()
    planned = plan_source(model, RestoreSchedule(kind="fit"), height=32, width=32)
    for n in (10, 25):
        own = model.schedule.plan(n)
        plan = planned(n)
        head, own_head = plan.truncated(), own.truncated()
        assert len(plan) == n and len(head) == len(own_head)
        assert head.alpha_bars[-1] == own_head.alpha_bars[-1] >= MEAN_ALPHA_BAR
        assert np.all(head.alpha_bars[:-1] < MEAN_ALPHA_BAR)
        assert np.array_equal(plan.alpha_bars[len(head) :], own.alpha_bars[len(own_head) :])
        fit = fill_plan.fitted_fill_chain(
            model,
            len(head),
            height=32,
            width=32,
            read_alpha_bar=float(head.alpha_bars[-1]),
            init=own_head.alpha_bars,
        )
        assert np.allclose(head.alpha_bars, fit.levels)
        assert fit.loss_final <= fit.loss_init  # never worse than the model's own head
        assert np.allclose(model.schedule.time_for_alpha_bar(head.alpha_bars), head.timesteps)


def test_bench_gives_every_image_its_own_seed() -> None:
    seeds = {image_seed(s, i) for s in range(3) for i in range(500)}
    assert len(seeds) == 1500
    assert image_seed(0, 7) == 7


def test_read_level_moves_the_posterior_mean_read_for_any_kind() -> None:
    model = oracle_model("band", NoiseSpec(kind="band", band=BAND), band=BAND, spectrum=SPECTRUM)
    model.meta["spectrum"] = estimate_spectrum(
        sample_gaussian_images(64, 1, 32, 32, seed=0, **SPECTRUM)
    ).to_dict()
    own = model.schedule.plan(20)
    own_calls = len(own.truncated())
    for kind in ("model", "linear", "fit"):
        choice = RestoreSchedule(kind=kind, read_alpha_bar=0.6)
        plan = plan_source(model, choice, height=32, width=32)(20)
        head = plan.truncated()
        assert head.alpha_bars[-1] == 0.6 and len(head) == own_calls
        assert np.all(head.alpha_bars[:-1] < MEAN_ALPHA_BAR)
        assert np.all(plan.alpha_bars[len(head) :] > 0.6)
        assert "read at ᾱ = 0.6" in choice.describe()
    # Other roles ignore it; a read below the cut is refused when the plan is built.
    omission = oracle_model("omission", NoiseSpec(omit=BAND), band=BAND, spectrum=SPECTRUM)
    same = plan_source(
        omission, RestoreSchedule(kind="linear", read_alpha_bar=0.6), height=32, width=32
    )
    assert np.array_equal(
        same(10).alpha_bars,
        plan_source(omission, RestoreSchedule(kind="linear"), height=32, width=32)(10).alpha_bars,
    )
    with pytest.raises(ScheduleFitError, match="read level"):
        plan_source(model, RestoreSchedule(kind="linear", read_alpha_bar=0.05), height=32, width=32)
    # The fitted chain is read where asked, with its levels below the cut.
    fit = fill_plan.fitted_fill_chain(model, 5, height=32, width=32, read_alpha_bar=0.6)
    assert fit.levels[-1] == 0.6 and fit.levels[-2] < MEAN_ALPHA_BAR
