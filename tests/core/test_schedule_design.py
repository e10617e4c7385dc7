"""Spectral schedule design (DESIGN.md §5): spectrum estimate, closed forms vs Monte Carlo, fit."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sagd_core.schedule_design import (
    FittedSchedule,
    ScheduleFitError,
    ScheduleGridError,
    SpectralLossError,
    Spectrum,
    SpectrumError,
    cosine_alpha_bars,
    cosine_train_alpha_bars,
    ddim_gains,
    ddim_output_variance,
    ddim_transfer,
    ddpm_coefficients,
    ddpm_output_variance,
    estimate_spectrum,
    gaussian_spectrum_power_law,
    kl_divergence,
    leading_timesteps,
    linear_alpha_bars,
    linear_train_alpha_bars,
    optimize_schedule,
    output_variance,
    sample_gaussian_images,
    schedule_loss,
    spectral_loss,
    ve_ddim_output_variance,
    w2_squared,
    wiener_eps_gain,
    wiener_x0_gain,
)

LAMS = np.array([1e-3, 0.03, 0.3, 1.0, 3.0, 30.0, 300.0, 1e3])


def _full_grid_power_law(height: int, width: int, exponent: float) -> np.ndarray:
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    r = np.maximum(np.sqrt(fy**2 + fx**2), 1.0 / max(height, width))
    return r**exponent


# --- spectrum ------------------------------------------------------------------------------


def test_estimate_recovers_known_spectrum() -> None:
    rng = np.random.default_rng(0)
    n, h, w = 4000, 16, 12
    lam_full = _full_grid_power_law(h, w, -1.5)
    # Independent generator: full-grid complex FFT filtering of white noise.
    xi = rng.standard_normal((n, 1, h, w))
    x = np.fft.ifft2(np.sqrt(lam_full) * np.fft.fft2(xi, norm="ortho"), norm="ortho").real
    x += rng.standard_normal((1, 1, h, w)) * 5.0  # a fixed mean image must not matter
    est = estimate_spectrum(x)
    assert est.lam.shape == (1, h, w // 2 + 1)
    assert est.num_samples == n
    rel = est.full_grid()[0] / lam_full - 1.0
    # |F x|² is χ² with 1 or 2 degrees of freedom: relative std ≤ √(2/n).
    assert np.max(np.abs(rel)) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(rel)) < 3 / math.sqrt(n)


@pytest.mark.parametrize("shape", [(9, 12), (8, 7)])
def test_half_grid_bookkeeping_matches_full_grid_and_pixels(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 2, *shape)) * np.arange(1, 3)[None, :, None, None]
    est = estimate_spectrum(x, batch_size=7)
    centred = x - x.mean(axis=0)
    full = np.sum(np.abs(np.fft.fft2(centred, norm="ortho")) ** 2, axis=0) / (x.shape[0] - 1)
    np.testing.assert_allclose(est.full_grid(), full, rtol=1e-10)
    # Parseval: multiplicity-weighted half-grid sum = mean per-pixel variance.
    np.testing.assert_allclose(
        est.pixel_variance(), x.var(axis=0, ddof=1).mean(axis=(1, 2)), rtol=1e-10
    )


def test_sampled_images_have_the_spectrum_and_torch_input_is_accepted() -> None:
    import torch

    spectrum = gaussian_spectrum_power_law(8, 8, -2.0, channels=2, pixel_variance=0.5)
    np.testing.assert_allclose(spectrum.pixel_variance(), [0.5, 0.5])
    x = sample_gaussian_images(spectrum, 3000, rng=np.random.default_rng(2))
    est = estimate_spectrum(torch.from_numpy(x).float())
    assert np.max(np.abs(est.lam / spectrum.lam - 1)) < 5 * math.sqrt(2 / 3000) + 1e-3


def test_radial_average_preserves_energy_and_isotropic_spectra() -> None:
    spectrum = gaussian_spectrum_power_law(16, 16, -2.0)
    est = estimate_spectrum(sample_gaussian_images(spectrum, 64, rng=np.random.default_rng(3)))
    for n_bins in (None, 5):
        radial = est.radially_averaged(n_bins)
        assert radial.radial
        np.testing.assert_allclose(radial.pixel_variance(), est.pixel_variance(), rtol=1e-12)
        # Averaging again changes nothing.
        np.testing.assert_allclose(radial.radially_averaged(n_bins).lam, radial.lam, rtol=1e-12)
    centres, profile = est.radial_profile(5)
    assert centres.shape == (5,) and profile.shape == (1, 5)
    assert np.all(np.diff(centres) > 0)
    smooth = estimate_spectrum(
        sample_gaussian_images(spectrum, 64, rng=np.random.default_rng(3)), radial=True
    )
    np.testing.assert_allclose(smooth.lam, est.radially_averaged().lam)


def test_whiten_is_a_pseudo_inverse() -> None:
    spectrum = gaussian_spectrum_power_law(8, 8, -2.0)
    w = np.ones((8, 5))
    w[2, 3] = 0.0
    w[1, 1] = 2.0
    white = spectrum.whiten(w)
    assert white.lam[0, 2, 3] == 0.0
    assert white.lam[0, 1, 1] == pytest.approx(spectrum.lam[0, 1, 1] / 4)
    assert white.lam[0, 0, 0] == spectrum.lam[0, 0, 0]
    with pytest.raises(SpectrumError, match="shape"):
        spectrum.whiten(np.ones((8, 8)))
    with pytest.raises(SpectrumError, match="non-negative"):
        spectrum.whiten(-w)


def test_spectrum_json_round_trip_and_errors() -> None:
    est = estimate_spectrum(np.random.default_rng(4).standard_normal((5, 3, 6, 5)))
    back = Spectrum.from_json(est.to_json())
    np.testing.assert_array_equal(back.lam, est.lam)
    assert (back.height, back.width, back.num_samples, back.radial) == (6, 5, 5, False)
    with pytest.raises(SpectrumError, match="JSON"):
        Spectrum.from_json("{not json")
    with pytest.raises(SpectrumError, match="format"):
        Spectrum.from_json('{"format": "other"}')
    doc = est.to_dict()
    doc["width"] = 7
    with pytest.raises(SpectrumError, match="shape"):
        Spectrum.from_dict(doc)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((4, 8, 8)), "shape"),
        (np.zeros((1, 1, 8, 8)), "at least 2"),
        (np.full((3, 1, 4, 4), np.nan), "NaN"),
        ([[1.0]], "numpy array or torch tensor"),
    ],
)
def test_estimate_rejects_bad_input(images: object, match: str) -> None:
    with pytest.raises(SpectrumError, match=match):
        estimate_spectrum(images)  # type: ignore[arg-type]


# --- closed forms vs a direct simulation ----------------------------------------------------


def _simulate(
    alpha_bars: np.ndarray,
    final: float,
    lam: np.ndarray,
    sampler: str,
    x: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Run DDIM(η=0)/DDPM from the update formulas with the exact Wiener denoiser."""
    grid = np.concatenate([[final], alpha_bars])  # grid[i] = ᾱ_i
    for i in range(alpha_bars.size, 0, -1):
        a, a_prev = grid[i], grid[i - 1]
        x0 = math.sqrt(a) * lam * x / (a * lam + 1 - a)
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        if sampler == "ddim":  # Song et al. (12), η = 0
            x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
        else:  # Ho et al. Algorithm 2 with σ² = β̃
            alpha = a / a_prev
            beta = 1 - alpha
            sigma2 = (1 - a_prev) / (1 - a) * beta
            x = (x - beta / math.sqrt(1 - a) * eps) / math.sqrt(alpha)
            x = x + math.sqrt(sigma2) * rng.standard_normal(x.shape)
    return x


GRIDS = {
    "linear10": (linear_alpha_bars(10), 1.0),
    "cosine7": (cosine_alpha_bars(7), 1.0),
    "linear5_final": (linear_alpha_bars(5, 500)[1:], float(linear_alpha_bars(5, 500)[0])),
}


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_ddim_transfer_is_the_simulated_linear_map(grid: str) -> None:
    ab, final = GRIDS[grid]
    out = _simulate(ab, final, LAMS, "ddim", np.ones_like(LAMS), np.random.default_rng(0))
    np.testing.assert_allclose(ddim_transfer(ab, LAMS, final_alpha_bar=final), out, rtol=1e-12)
    gains = ddim_gains(ab, LAMS, final_alpha_bar=final)
    assert gains.shape == (ab.size, LAMS.size)
    np.testing.assert_allclose(np.prod(gains, axis=0), out, rtol=1e-12)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_output_variance_matches_monte_carlo(sampler: str, grid: str) -> None:
    ab, final = GRIDS[grid]
    rng = np.random.default_rng(5)
    n = 200_000
    x_out = _simulate(ab, final, LAMS, sampler, rng.standard_normal((n, LAMS.size)), rng)
    mc = np.mean(x_out**2, axis=0)
    closed = output_variance(ab, LAMS, sampler=sampler, final_alpha_bar=final)  # type: ignore[arg-type]
    # Sampling error of a variance from 2e5 samples is √(2/n) ≈ 0.32%.
    np.testing.assert_allclose(mc, closed, rtol=0.01)


def test_last_step_to_one_is_the_wiener_denoiser() -> None:
    ab = linear_alpha_bars(4)
    g = ddim_gains(ab, LAMS)
    np.testing.assert_allclose(g[0], wiener_x0_gain(LAMS, ab[0]), rtol=1e-14)
    b, s2 = ddpm_coefficients(ab, LAMS)
    np.testing.assert_allclose(b[0], wiener_x0_gain(LAMS, ab[0]), rtol=1e-12)
    assert s2[0] == 0.0 and np.all(s2[1:] > 0)
    a = 0.3
    x = 1.7
    x0 = wiener_x0_gain(LAMS, a) * x
    np.testing.assert_allclose(
        wiener_eps_gain(LAMS, a) * x, (x - math.sqrt(a) * x0) / math.sqrt(1 - a), rtol=1e-12
    )


def test_closed_forms_broadcast_over_shapes_and_prior() -> None:
    ab = cosine_alpha_bars(6)
    lam = LAMS.reshape(2, 4)
    v = ddim_output_variance(ab, lam, prior_variance=2.0)
    assert v.shape == (2, 4)
    np.testing.assert_allclose(v, 2.0 * ddim_transfer(ab, lam) ** 2)
    v_ddpm = ddpm_output_variance(ab, lam)
    np.testing.assert_allclose(v_ddpm.reshape(-1), ddpm_output_variance(ab, LAMS))


def test_ve_sampler_equals_vp_ddim_under_reparametrisation() -> None:
    ab = linear_alpha_bars(8)
    sigmas = np.sqrt((1 - ab) / ab)
    v_ve = ve_ddim_output_variance(sigmas, LAMS, prior_variance=1 / ab[-1])
    np.testing.assert_allclose(v_ve, ddim_output_variance(ab, LAMS), rtol=1e-10)
    with pytest.raises(ScheduleGridError, match="increasing"):
        ve_ddim_output_variance(sigmas[::-1], LAMS)


@pytest.mark.parametrize(
    ("alpha_bars", "final", "match"),
    [
        (np.array([0.5, 0.9]), 1.0, "decreasing"),
        (np.array([0.9, 0.0]), 1.0, r"\(0, 1\)"),
        (np.array([1.0, 0.5]), 1.0, r"\(0, 1\)"),
        (np.array([0.9, 0.5]), 0.8, "final_alpha_bar"),
        (np.zeros((2, 2)), 1.0, "1-D"),
    ],
)
def test_grid_validation(alpha_bars: np.ndarray, final: float, match: str) -> None:
    with pytest.raises(ScheduleGridError, match=match):
        ddim_transfer(alpha_bars, LAMS, final_alpha_bar=final)


def test_unknown_sampler_and_negative_lam_rejected() -> None:
    with pytest.raises(ScheduleGridError, match="sampler"):
        output_variance(linear_alpha_bars(3), LAMS, sampler="euler")  # type: ignore[arg-type]
    with pytest.raises(ScheduleGridError, match="non-negative"):
        ddim_transfer(linear_alpha_bars(3), -LAMS)


# --- losses ---------------------------------------------------------------------------------


def test_losses_vanish_at_the_data_and_kl_is_nonnegative() -> None:
    rng = np.random.default_rng(6)
    lam = rng.exponential(size=100)
    assert w2_squared(lam, lam) == 0.0
    assert kl_divergence(lam, lam) == pytest.approx(0.0, abs=1e-12)
    for _ in range(5):
        v = rng.exponential(size=100)
        assert kl_divergence(v, lam) > 0
        assert w2_squared(v, lam) > 0
    v = 2.0 * lam
    expected_kl = 0.5 * lam.size * (2 - 1 - math.log(2))
    assert kl_divergence(v, lam) == pytest.approx(expected_kl)
    assert w2_squared(v, lam) == pytest.approx((math.sqrt(2) - 1) ** 2 * lam.sum())


def test_losses_mask_zero_lam_and_apply_weights() -> None:
    lam = np.array([0.0, 1.0, 4.0])
    v = np.array([5.0, 4.0, 1.0])
    assert w2_squared(v, lam) == pytest.approx(2.0)
    assert w2_squared(v, lam, weights=np.array([7.0, 2.0, 1.0])) == pytest.approx(3.0)
    assert math.isfinite(kl_divergence(v, lam))
    assert kl_divergence(np.array([0.0, 0.0, 1.0]), lam) == math.inf
    assert spectral_loss(v, lam, "w2") == w2_squared(v, lam)
    with pytest.raises(SpectralLossError, match="non-negative"):
        w2_squared(-v, lam)
    with pytest.raises(SpectralLossError, match="broadcast"):
        w2_squared(v, lam[:2])
    with pytest.raises(SpectralLossError, match="unknown loss"):
        spectral_loss(v, lam, "l1")  # type: ignore[arg-type]


# --- heuristic grids and fitting ------------------------------------------------------------


def test_heuristic_grids_use_leading_spacing() -> None:
    np.testing.assert_array_equal(leading_timesteps(10), np.arange(0, 1000, 100))
    np.testing.assert_array_equal(leading_timesteps(3, 10), [0, 3, 6])
    lin = linear_alpha_bars(10)
    np.testing.assert_allclose(lin, np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))[::100])
    np.testing.assert_allclose(linear_alpha_bars(1000), linear_train_alpha_bars())
    for grid in (lin, cosine_alpha_bars(10), cosine_alpha_bars(50)):
        assert np.all(np.diff(grid) < 0) and grid[0] < 1 and grid[-1] > 0
    cos = cosine_train_alpha_bars()
    assert cos[0] > 0.9999 and cos[499] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ScheduleFitError, match="num_steps"):
        linear_alpha_bars(0)


def test_half_grid_loss_equals_full_grid_loss() -> None:
    spectrum = gaussian_spectrum_power_law(12, 9, -2.0, channels=2)
    for sampler in ("ddim", "ddpm"):
        for loss in ("w2", "kl"):
            half = schedule_loss(linear_alpha_bars(10), spectrum, sampler=sampler, loss=loss)
            full = schedule_loss(
                linear_alpha_bars(10), spectrum.full_grid(), sampler=sampler, loss=loss
            )
            assert half == pytest.approx(full, rel=1e-12)


@pytest.mark.parametrize("pixel_variance", [None, 1.0])
def test_w2_ordering_on_power_law_spectrum(pixel_variance: float | None) -> None:
    # DESIGN.md §5 reports DDIM W2² 38.6 (linear) / 106.7 (cosine) / 23.5 (optimised) at N=10 on a
    # 32×32 λ ∝ r⁻² of unknown normalisation; the ordering is what must hold.
    spectrum = gaussian_spectrum_power_law(32, 32, -2.0, pixel_variance=pixel_variance)
    linear = schedule_loss(linear_alpha_bars(10), spectrum)
    cosine = schedule_loss(cosine_alpha_bars(10), spectrum)
    fitted = optimize_schedule(spectrum, 10)
    assert fitted.loss_init == pytest.approx(linear)
    assert fitted.loss_final < 0.9 * linear
    assert fitted.loss_final < cosine
    by_steps = [schedule_loss(linear_alpha_bars(n), spectrum) for n in (10, 20, 50, 100)]
    assert all(a > b for a, b in itertools.pairwise(by_steps))


@pytest.mark.parametrize(("sampler", "loss"), [("ddim", "w2"), ("ddpm", "kl"), ("ddpm", "w2")])
def test_optimizer_deterministic_feasible_and_not_worse(sampler: str, loss: str) -> None:
    spectrum = gaussian_spectrum_power_law(16, 16, -2.0, pixel_variance=1.0)
    kw = {"sampler": sampler, "loss": loss}
    a = optimize_schedule(spectrum, 8, **kw)  # type: ignore[arg-type]
    b = optimize_schedule(spectrum, 8, **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a.alpha_bars, b.alpha_bars)
    assert a.loss_final == b.loss_final
    ab = a.alpha_bars
    assert ab.shape == (8,)
    assert np.all(ab >= 1e-6) and np.all(ab <= 0.99999)
    assert np.all(-np.diff(a.log_snr) >= a.margin * (1 - 1e-9))
    assert a.loss_final <= a.loss_init
    assert a.loss_final == pytest.approx(schedule_loss(ab, spectrum, **kw))  # type: ignore[arg-type]
    # The unconstrained fallback reaches the same optimum.
    c = optimize_schedule(spectrum, 8, method="lbfgs", **kw)  # type: ignore[arg-type]
    assert c.method == "lbfgs"
    assert c.loss_final == pytest.approx(a.loss_final, rel=1e-4)


def test_optimizer_inits_final_level_and_errors() -> None:
    spectrum = gaussian_spectrum_power_law(8, 8, -2.0, pixel_variance=1.0)
    from_cosine = optimize_schedule(spectrum, 6, init="cosine", final_alpha_bar=0.9999)
    assert from_cosine.init == "cosine" and from_cosine.final_alpha_bar == 0.9999
    assert from_cosine.alpha_bars[0] <= 0.9999
    custom = optimize_schedule(spectrum, 3, init=np.array([0.9, 0.5, 0.1]))
    assert custom.init == "custom" and custom.loss_final <= custom.loss_init
    with pytest.raises(ScheduleFitError, match="init grid has"):
        optimize_schedule(spectrum, 4, init=np.array([0.9, 0.5, 0.1]))
    with pytest.raises(ScheduleFitError, match="unknown sampler"):
        optimize_schedule(spectrum, 4, sampler="euler")  # type: ignore[arg-type]
    with pytest.raises(ScheduleFitError, match="λ > 0"):
        optimize_schedule(np.zeros((4, 4)), 4)
    with pytest.raises(ScheduleFitError, match="do not match"):
        optimize_schedule(spectrum, 4, weights=np.ones(3))


def test_weights_turn_whitened_w2_into_pixel_space_w2() -> None:
    spectrum = gaussian_spectrum_power_law(8, 8, -2.0, pixel_variance=1.0)
    w = np.linspace(0.5, 1.5, 8 * 5).reshape(8, 5)
    w[3, 2] = 0.0
    white = spectrum.whiten(w)
    ab = linear_alpha_bars(10)
    # Pixel space: output variance w²·v(λ/w²), data λ, zero-noise bins generate nothing.
    v_pixel = w**2 * ddim_output_variance(ab, white.lam[0])
    expected = w2_squared(v_pixel, spectrum.lam[0], weights=white.multiplicity)
    assert schedule_loss(ab, white, weights=w**2) == pytest.approx(
        expected - spectrum.lam[0, 3, 2] * white.multiplicity[3, 2], rel=1e-12
    )
    assert schedule_loss(ab, white, loss="kl") == pytest.approx(
        kl_divergence(v_pixel, white.lam[0] * w**2, weights=white.multiplicity), rel=1e-12
    )


def test_fitted_schedule_json_round_trip() -> None:
    spectrum = gaussian_spectrum_power_law(8, 8, -2.0, pixel_variance=1.0)
    fitted = optimize_schedule(spectrum, 5, sampler="ddpm", loss="kl")
    back = FittedSchedule.from_json(fitted.to_json())
    np.testing.assert_array_equal(back.alpha_bars, fitted.alpha_bars)
    assert back.to_dict() == fitted.to_dict()
    doc = fitted.to_dict()
    doc["alpha_bars"] = doc["alpha_bars"][::-1]
    with pytest.raises(ScheduleFitError, match="decreasing"):
        FittedSchedule.from_dict(doc)
    with pytest.raises(ScheduleFitError, match="format"):
        FittedSchedule.from_json('{"format": "sagd.spectrum", "version": 1}')
