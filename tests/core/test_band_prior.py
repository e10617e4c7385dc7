"""Band statistics from corrupted images (``sagd_core.restore.methods.band_prior``): the clean
Tweedie read of a corrupted-data band model, and constant-magnitude (periodic) bins."""

from __future__ import annotations

import numpy as np
import torch

from sagd_core.calibration.fill import calibrate_fill_gain
from sagd_core.data import apply_corruption, parse_corruption
from sagd_core.restore import ModelSet, RestoreRequest, restore
from sagd_core.restore.gaussian_oracle import (
    WienerEps,
    oracle_model,
    power_law_spectrum,
)
from sagd_core.restore.methods.band_prior import (
    clean_tweedie,
    corruption_ratio,
    magnitude_stats,
    project_magnitude,
)
from sagd_core.samplers.common import predict_x0
from sagd_core.spectral import NoiseSpec, noise_weights
from sagd_core.spectral.masks import band_mask
from tests.core.periodic_case import periodic_band_model, periodic_images

BAND = {"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": 1.0}


def _band_power(x: np.ndarray, mask: np.ndarray) -> float:
    spec = np.fft.rfft2(x, norm="ortho")
    return float((np.abs(spec) ** 2 * mask).sum())


def test_clean_tweedie_turns_a_corrupted_data_denoiser_into_the_clean_posterior_mean() -> None:
    """Gaussian data (power λ) and Gaussian band corruption (power v_c = ρ w² per bin): the optimal
    denoiser of the corrupted data is the Wiener filter with λ + v_c in the band; the correction
    gives ``E[x_B | x_t]`` under the same (corrupted) process, √ᾱ λ / (ᾱ(λ + v_c) + (1−ᾱ) w²)."""
    h = w = 16
    spec = parse_corruption(BAND).band_spec()
    noise = NoiseSpec(kind="band", band=spec)
    mask_np = band_mask(spec, h, w)
    w2 = noise_weights(noise, h, w) ** 2
    rho = 0.7
    lam = power_law_spectrum(h, w)
    model = oracle_model("band", noise, band=spec)
    corrupted = WienerEps(model.schedule, noise, {})
    corrupted._grids[(h, w)] = (w2, lam + rho * w2 * mask_np)
    x_t = torch.randn(3, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    mask = torch.as_tensor(mask_np.copy())
    spec_t = torch.fft.rfft2(x_t, norm="ortho")
    for t in (100.0, 400.0, 800.0):
        a = float(
            np.interp(t, np.arange(model.schedule.alpha_bars.size), model.schedule.alpha_bars)
        )
        x0_corrupted = predict_x0(x_t, corrupted(x_t, torch.full((3,), t)), a)
        fixed = clean_tweedie(x0_corrupted, x_t, a, rho, mask)
        gain = torch.as_tensor(a**0.5 * lam / (a * (lam + rho * w2) + (1 - a) * w2))
        expected = torch.fft.irfft2(spec_t * gain, s=(h, w), norm="ortho")
        band_err = _band_power((fixed - expected).numpy(), mask_np)
        assert band_err < 1e-20 + 1e-12 * _band_power(expected.numpy(), mask_np)
        assert _band_power((x0_corrupted - expected).numpy(), mask_np) > 1e-3  # it mattered
        # Outside the band nothing changes.
        assert _band_power((fixed - x0_corrupted).numpy(), 1.0 - mask_np) < 1e-20
    assert clean_tweedie(x_t, x_t, 0.3, 0.0, mask) is x_t  # uncalibrated: unchanged


def test_corruption_ratio_of_band_noise_is_gamma_squared() -> None:
    spec = parse_corruption(BAND).band_spec()
    weights = noise_weights(NoiseSpec(kind="band", band=spec), 16, 16)
    for gamma in (0.5, 1.0):
        noise_only = apply_corruption(
            np.zeros((400, 1, 16, 16), np.float32),
            parse_corruption({**BAND, "gamma": gamma}),
            seed=0,
        )
        rho = corruption_ratio(noise_only, spec, weights)
        assert abs(rho - gamma**2) < 0.05 * gamma**2


def test_constant_magnitude_bins_are_found_and_halve_the_band_error() -> None:
    spec, clean, y = periodic_images(96, seed=3, corruption_seed=4)
    stats = magnitude_stats(y[:64], spec)
    assert stats is not None and sorted(map(tuple, stats["bins"])) == [(4, 2), (14, 5)]
    # A sinusoid of peak 0.3 at a grid frequency has |F| = 0.3·√(HW)/2 = 2.4 in its bin.
    assert np.allclose(stats["magnitude"], 2.4, rtol=0.02)
    # Gaussian band noise is not constant-magnitude.
    noisy = apply_corruption(clean.astype(np.float32), parse_corruption(BAND), seed=4)
    assert magnitude_stats(noisy, parse_corruption(BAND).band_spec()) is None
    mask = band_mask(spec, 16, 16)
    notch_err = notch_err_noisy = proj_err = proj_err_noisy = 0.0
    rng = np.random.default_rng(0)
    for i in range(64, 96):
        yi = torch.as_tensor(y[i : i + 1])
        notched = torch.fft.irfft2(
            torch.fft.rfft2(yi, norm="ortho") * torch.as_tensor(1 - mask), s=(16, 16), norm="ortho"
        )
        out, n = project_magnitude(notched, yi, stats)
        assert n == 2
        notch_err += _band_power(clean[i] - notched.numpy()[0], mask)
        proj_err += _band_power(clean[i] - out.numpy()[0], mask)
        noisy_y = yi + 0.05 * torch.as_tensor(rng.standard_normal((1, 1, 16, 16)))
        out_noisy, _ = project_magnitude(notched, noisy_y, stats, noise_std=0.05)
        notch_err_noisy += _band_power(clean[i] - notched.numpy()[0], mask)
        proj_err_noisy += _band_power(clean[i] - out_noisy.numpy()[0], mask)
    assert proj_err < 0.7 * notch_err and proj_err_noisy < 0.85 * notch_err_noisy
    # Another image size: not applied.
    other = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    assert project_magnitude(other, other, stats)[1] == 0


def test_calibration_records_the_band_statistics_and_restore_uses_them() -> None:
    spec, clean, y = periodic_images(40, seed=5, corruption_seed=6)
    model = periodic_band_model(spec)
    calib = calibrate_fill_gain(model, y[:32], spec, steps=4, samples=2)
    assert calib["magnitude"] is not None and len(calib["magnitude"]["bins"]) == 2
    assert calib["corruption_ratio"] > 0 and 0.0 <= calib["gain"] <= 1.0
    image = np.transpose((y[35] + 1.0) / 2.0, (1, 2, 0))
    res = restore(
        image, RestoreRequest(method="sagd", band=spec, steps=4, samples=2), ModelSet(band=model)
    )
    assert res.report["details"]["fill"]["constant_magnitude_bins"] == 2
    out = np.transpose(2.0 * res.unclipped - 1.0, (2, 0, 1))
    mask = band_mask(spec, 16, 16)
    assert _band_power(clean[35] - out, mask) < 0.8 * _band_power(clean[35], mask)
