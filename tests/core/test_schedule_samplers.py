"""The project's real samplers versus the closed-form spectral transfer (DESIGN.md §5).

``sample_ddim`` (η = 0) and ``sample_ddpm`` run with the exact Wiener ε-predictor of stationary
Gaussian data of known spectrum λ, with white and shaped (plw, omission) SAGD noise, on heuristic
plans (``Schedule.plan``) and fitted grids (``plan_from_grid``). Their per-frequency output
variance must equal ``w² · v(λ / w²)`` (the closed form in whitened coordinates, DESIGN.md §3/§5),
and 0 where ``w = 0``.

Two Monte Carlo estimators:

- *moment-matched draws* (the 1 % per-frequency check). Plain Monte Carlo cannot reach a 1 %
  tolerance at ≥ 5 standard errors per frequency with a test-sized batch: the relative standard
  error of a variance from n images is ``1/√n`` per complex bin (``√(2/n)`` for real bins), i.e.
  1.6 % at n = 4096; 5 SE ≤ 1 % would need n ≈ 250 000 per bin. So every noise draw the sampler
  makes (prior and DDPM step noise) is, per frequency bin and channel, made orthogonal over the
  batch to all earlier draws and scaled to empirical power exactly ``w²`` (a standard
  variance-reduction, and Hermitian-consistent, so the draws stay real images). Both samplers are
  linear per frequency for this predictor, so the empirical output power then equals the
  expected variance up to float64 round-off: the standard error is ~0 and 1 % is ≫ 5 SE. Any bug
  in the update formulas, in the noise shaping or in the plan shows up in full.
- *plain draws* from the noise operator itself, where each frequency is checked within 5 of its
  own standard errors and the mean ratio over all frequencies within 5 pooled standard errors
  (≈ 0.5 % here).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import torch

from sagd_core.samplers import sample_ddim, sample_ddpm
from sagd_core.schedule_design import (
    Spectrum,
    gaussian_spectrum_power_law,
    grid_from_plan,
    linear_alpha_bars,
    mean_error_gain,
    optimize_schedule,
    output_variance,
    plan_from_grid,
    wiener_eps_gain,
)
from sagd_core.schedules import SamplingPlan, make_schedule
from sagd_core.spectral import NoiseSpec, parse_band_spec
from sagd_core.spectral.operator import SpectralNoise

SIZE = 16
BAND: dict[str, object] = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}
NOISES = {
    "white": NoiseSpec(),
    "plw": NoiseSpec(kind="plw", alpha=-0.5),
    "omit": NoiseSpec(omit=parse_band_spec(BAND)),
}
SCHEDULE = make_schedule("linear")


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Small tensors: intra-op threads only add contention on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data_spectrum() -> Spectrum:
    """Two channels with different power (λ ∝ r⁻², per-pixel variances 0.25 and 1)."""
    base = gaussian_spectrum_power_law(SIZE, SIZE, -2.0, pixel_variance=0.25).lam[0]
    return Spectrum(np.stack([base, 4.0 * base]), SIZE, SIZE)


class WienerEps:
    """The exact ε-predictor ``ε̂ = irfft2(g · (rfft2(x) − √ᾱ F μ))``,
    ``g = wiener_eps_gain(λ/w², ᾱ)`` (0 where w = 0), per frequency and channel; μ is the data
    mean image (default 0).

    The network-style time argument carries no ᾱ, so the predictor walks the plan: call ``i``
    uses ``plan.alpha_bars[i]`` — and checks that the sampler passed that level's model time.
    """

    def __init__(
        self, lam: np.ndarray, w: np.ndarray, plan: SamplingPlan, mean: np.ndarray | None = None
    ) -> None:
        w2 = w**2
        self.mean_spec = (
            None if mean is None else torch.fft.rfft2(torch.as_tensor(mean), norm="ortho")
        )
        self.lam_white = np.divide(lam, w2, out=np.zeros_like(lam), where=w2 > 0)
        self.support = w > 0
        self.plan = plan
        self.calls = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        i = self.calls
        assert i < len(self.plan), "sampler called the model more often than the plan has steps"
        assert torch.all(t == float(self.plan.timesteps[i])), "wrong model time for the step"
        alpha_bar = float(self.plan.alpha_bars[i])
        gain = wiener_eps_gain(self.lam_white, alpha_bar) * self.support
        self.calls += 1
        spec = torch.fft.rfft2(x, norm="ortho")
        if self.mean_spec is not None:
            spec = spec - math.sqrt(alpha_bar) * self.mean_spec
        spec = spec * torch.as_tensor(gain, dtype=x.dtype)
        return torch.fft.irfft2(spec, s=x.shape[-2:], norm="ortho")


class MomentMatchedNoise(SpectralNoise):
    """Shaped draws that are, per bin and channel, orthogonal over the batch to the constant
    (zero batch mean) and to every earlier draw, with empirical power exactly ``w²``
    (Gram–Schmidt in the Fourier domain, twice)."""

    def __init__(self, spec: NoiseSpec) -> None:
        super().__init__(spec, SIZE, SIZE, dtype=torch.float64)
        self.basis: list[torch.Tensor] = []

    def sample(
        self, shape: Sequence[int], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        xi = torch.randn(tuple(shape), generator=generator, dtype=torch.float64)
        z = torch.fft.rfft2(xi, norm="ortho")
        if not self.basis:
            self.basis.append(torch.ones_like(z))
        for _ in range(2):
            for q in self.basis:
                z = z - q * (z * q.conj()).mean(dim=0, keepdim=True)
        z = z / (z.abs() ** 2).mean(dim=0, keepdim=True).sqrt()
        self.basis.append(z)
        return torch.fft.irfft2(z * self.weights, s=(SIZE, SIZE), norm="ortho")


def _plan(kind: str, spectrum: Spectrum, w: np.ndarray, sampler: str) -> SamplingPlan:
    if kind == "schedule.plan":
        return SCHEDULE.plan(10)
    if kind == "linear_grid":
        return plan_from_grid(linear_alpha_bars(8), SCHEDULE)
    fitted = optimize_schedule(
        spectrum.whiten(w),
        8,
        sampler=sampler,  # type: ignore[arg-type]
        weights=w**2,
        max_iter=60,
    )
    return plan_from_grid(fitted.alpha_bars, SCHEDULE, final_alpha_bar=fitted.final_alpha_bar)


def _sample(
    sampler: str,
    plan: SamplingPlan,
    lam: np.ndarray,
    op: SpectralNoise,
    n: int,
    seed: int,
    mean: np.ndarray | None = None,
) -> torch.Tensor:
    """Run the real sampler with the Wiener predictor; returns ``rfft2`` of the outputs."""
    w = op.weights.numpy()
    model = WienerEps(lam, w, plan, mean)
    gen = torch.Generator().manual_seed(seed)
    shape = (n, lam.shape[0], SIZE, SIZE)
    if sampler == "ddim":
        out = sample_ddim(model, plan, op, shape, generator=gen, eta=0.0)
    else:
        out = sample_ddpm(model, plan, op, shape, generator=gen)
    assert model.calls == len(plan)
    assert out.dtype == torch.float64
    return torch.fft.rfft2(out, norm="ortho")


def _run(
    sampler: str, plan: SamplingPlan, lam: np.ndarray, op: SpectralNoise, n: int, seed: int
) -> np.ndarray:
    """Empirical per-frequency output power ``mean |F x|²`` on the half grid, (C, H, W//2+1)."""
    spec = _sample(sampler, plan, lam, op, n, seed)
    return (spec.abs() ** 2).mean(dim=0).numpy()


def _closed_form(sampler: str, plan: SamplingPlan, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``w² v(λ/w²)`` in pixel coordinates; 0 where w = 0."""
    grid, final = grid_from_plan(plan)
    w2 = w**2
    lam_white = np.divide(lam, w2, out=np.zeros_like(lam), where=w2 > 0)
    v = output_variance(grid, lam_white, sampler=sampler, final_alpha_bar=final)  # type: ignore[arg-type]
    return w2 * v


@pytest.mark.parametrize("plan_kind", ["schedule.plan", "linear_grid", "fitted"])
@pytest.mark.parametrize("noise", sorted(NOISES))
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sampler_output_variance_matches_closed_form_per_frequency(
    sampler: str, noise: str, plan_kind: str
) -> None:
    spectrum = _data_spectrum()
    op = MomentMatchedNoise(NOISES[noise])
    w = op.weights.numpy()
    plan = _plan(plan_kind, spectrum, w, sampler)
    assert np.all(np.diff(plan.alpha_bars) > 0) and plan.final_alpha_bar == 1.0

    empirical = _run(sampler, plan, spectrum.lam, op, n=256, seed=3)
    closed = _closed_form(sampler, plan, spectrum.lam, w)

    support = np.broadcast_to(w > 0, closed.shape)
    assert np.all(closed[support] > 0)
    rel = empirical[support] / closed[support] - 1.0
    assert np.max(np.abs(rel)) < 0.01, f"worst relative error {np.max(np.abs(rel)):.3g}"
    # Where the forward noise is omitted the sampler must generate nothing at all.
    if not np.all(support):
        assert np.max(empirical[~support]) < 1e-20 * np.max(closed)


def test_moment_matched_draws_are_orthonormal_and_real() -> None:
    op = MomentMatchedNoise(NOISES["plw"])
    gen = torch.Generator().manual_seed(0)
    draws = [op.sample((64, 2, SIZE, SIZE), generator=gen) for _ in range(3)]
    w2 = op.weights.numpy() ** 2
    specs = [torch.fft.rfft2(d, norm="ortho") for d in draws]
    assert max(float(s.mean(0).abs().max()) for s in specs) < 1e-12  # zero batch mean
    for i, a in enumerate(specs):
        power = (a.abs() ** 2).mean(0).numpy()
        np.testing.assert_allclose(power, np.broadcast_to(w2, power.shape), rtol=1e-9)
        for b in specs[:i]:
            assert torch.max((a * b.conj()).mean(0).abs()) < 1e-9


@pytest.mark.parametrize(("sampler", "noise"), [("ddim", "plw"), ("ddpm", "omit")])
def test_plain_monte_carlo_agrees_within_standard_errors(sampler: str, noise: str) -> None:
    n = 4096
    spectrum = _data_spectrum()
    op = SpectralNoise(NOISES[noise], SIZE, SIZE, dtype=torch.float64)
    w = op.weights.numpy()
    plan = SCHEDULE.plan(10)
    empirical = _run(sampler, plan, spectrum.lam, op, n=n, seed=11)
    closed = _closed_form(sampler, plan, spectrum.lam, w)
    support = np.broadcast_to(w > 0, closed.shape)
    assert np.max(empirical[~support], initial=0.0) < 1e-20 * np.max(closed)
    ratio = empirical[support] / closed[support] - 1.0
    # |F x|² of a zero-mean Gaussian: relative SE 1/√n for complex bins, √(2/n) for real ones.
    real_bin = np.zeros((SIZE, SIZE // 2 + 1), dtype=bool)
    real_bin[[0, 0, SIZE // 2, SIZE // 2], [0, SIZE // 2, 0, SIZE // 2]] = True
    se = np.broadcast_to(np.where(real_bin, math.sqrt(2 / n), 1 / math.sqrt(n)), closed.shape)
    se = se[support]
    assert np.max(np.abs(ratio) / se) < 5.0
    pooled_se = math.sqrt(np.sum(se**2)) / se.size
    assert abs(np.mean(ratio)) < 5 * pooled_se
    assert 5 * pooled_se < 0.01  # the pooled check is tighter than 1 %


def test_fitted_grid_brings_the_samples_closer_to_the_data() -> None:
    """End to end: the optimised 6-step DDIM grid, run by the real sampler, gives a smaller
    pixel-space W2 to the data spectrum than the linear 6-step plan (as the closed form says)."""
    spectrum = _data_spectrum()
    op = MomentMatchedNoise(NOISES["plw"])
    w = op.weights.numpy()
    fitted = optimize_schedule(spectrum.whiten(w), 6, weights=w**2, max_iter=100)
    mult = spectrum.multiplicity

    def w2(v: np.ndarray) -> float:
        return float(np.sum(mult * (np.sqrt(v) - np.sqrt(spectrum.lam)) ** 2))

    linear = _run("ddim", SCHEDULE.plan(6), spectrum.lam, op, n=256, seed=0)
    op.basis.clear()
    optimised = _run(
        "ddim", plan_from_grid(fitted.alpha_bars, SCHEDULE), spectrum.lam, op, n=256, seed=0
    )
    assert w2(optimised) < w2(linear)
    assert w2(optimised) == pytest.approx(fitted.loss_final, rel=1e-6)


@pytest.mark.parametrize("plan_kind", ["schedule.plan", "fitted"])
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_missed_data_mean_matches_the_mean_error_gain(sampler: str, plan_kind: str) -> None:
    """Data with a mean image μ and a zero-mean prior: the output mean is ``μ + e μ`` per
    frequency with ``e = mean_error_gain(…)``, and the spread around it is still ``w² v``."""
    spectrum = _data_spectrum()
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    bump = np.exp(-(xx**2 + yy**2) / 20.0) - 0.5
    mean = np.stack([bump, -0.5 * bump])
    op = MomentMatchedNoise(NOISES["plw"])
    w = op.weights.numpy()
    if plan_kind == "fitted":
        mean_spec = np.fft.rfft2(mean, norm="ortho")
        with_mean = Spectrum(spectrum.lam, SIZE, SIZE, mean_power=np.abs(mean_spec) ** 2)
        fitted = optimize_schedule(
            with_mean.whiten(w),
            6,
            sampler=sampler,  # type: ignore[arg-type]
            weights=w**2,
            max_iter=60,
            alpha_bar_range=(1e-4, 0.9999),
        )
        plan = plan_from_grid(fitted.alpha_bars, SCHEDULE)
    else:
        plan = SCHEDULE.plan(8)
    spec = _sample(sampler, plan, spectrum.lam, op, n=128, seed=1, mean=mean)

    grid, final = grid_from_plan(plan)
    w2 = w**2
    lam_white = np.divide(spectrum.lam, w2, out=np.zeros_like(spectrum.lam), where=w2 > 0)
    e = mean_error_gain(grid, lam_white, sampler=sampler, final_alpha_bar=final)  # type: ignore[arg-type]
    mu = np.fft.rfft2(mean, norm="ortho")
    out_mean = spec.mean(dim=0).numpy()
    np.testing.assert_allclose(out_mean, (1 + e) * mu, rtol=0, atol=1e-9 * np.abs(mu).max())
    assert np.max(np.abs(e * mu)) > 1e-4 * np.abs(mu).max()  # ≫ atol: the check has teeth
    spread = ((spec - spec.mean(dim=0)).abs() ** 2).mean(dim=0).numpy()
    closed = _closed_form(sampler, plan, spectrum.lam, w)
    np.testing.assert_allclose(spread, closed, rtol=0.01)
