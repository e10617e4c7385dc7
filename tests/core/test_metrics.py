"""Metrics: PSNR/SSIM split by band, band energy, spectra distance, Fréchet distance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sagd_core.metrics import (
    band_energy,
    band_energy_ratio,
    band_metrics,
    band_split,
    gaussian_frechet,
    mse_split,
    psnr,
    radial_power,
    spectrum_distance,
    ssim,
)
from sagd_core.spectral import band_mask, parse_band_spec

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})


def _images(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 2, 24, 20))


def test_psnr_matches_definition_and_identity_is_infinite() -> None:
    ref = _images()
    x = ref + 0.1
    assert psnr(x, ref) == pytest.approx(10 * math.log10(4 / 0.01))
    assert psnr(ref, ref) == math.inf
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(ref, ref[:, :1])


def test_in_and_out_of_band_mse_add_up_to_the_total() -> None:
    ref, x = _images(seed=1), _images(seed=2)
    inside, outside = mse_split(x, ref, BAND)
    total = ((x - ref) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(inside + outside, total, rtol=1e-10)
    assert np.all(inside > 0) and np.all(outside > 0)


def test_error_only_in_band_leaves_out_of_band_metrics_perfect() -> None:
    ref = _images()
    inside, _ = band_split(_images(seed=5), BAND)
    x = ref + inside  # an error that lives only in the band
    m = band_metrics(x, ref, BAND)
    assert m.psnr_out > 100 and m.ssim_out == pytest.approx(1.0, abs=1e-9)
    assert m.psnr_in == pytest.approx(m.psnr, abs=1e-6)
    assert m.ssim_in < 0.9 and m.ssim < 1.0


def test_band_split_is_a_partition() -> None:
    x = _images()
    inside, outside = band_split(x, BAND)
    np.testing.assert_allclose(inside + outside, x, atol=1e-12)
    spec = np.fft.rfft2(inside, norm="ortho")
    assert np.abs(spec[..., band_mask(BAND, 24, 20) == 0]).max() < 1e-10


def test_band_energy_and_ratio() -> None:
    ref = _images()
    inside, outside = band_split(ref, BAND)
    assert band_energy(outside, BAND) == pytest.approx(0.0, abs=1e-20)
    assert band_energy(ref, BAND) == pytest.approx(np.mean(inside**2) * 1, rel=1e-9)
    assert band_energy_ratio(ref, ref, BAND) == pytest.approx(1.0)
    assert band_energy_ratio(outside, ref, BAND) == pytest.approx(0.0, abs=1e-15)
    assert band_energy_ratio(2 * ref, ref, BAND) == pytest.approx(4.0)


def test_ssim_identity_and_degradation() -> None:
    ref = _images()
    assert ssim(ref, ref) == pytest.approx(1.0)
    noisy = ref + np.random.default_rng(9).normal(0, 0.3, ref.shape)
    assert ssim(noisy, ref) < 0.9


def test_radial_power_of_white_noise_is_flat_and_distance_detects_filtering() -> None:
    rng = np.random.default_rng(0)
    white = rng.standard_normal((64, 1, 32, 32))
    radii, power = radial_power(white)
    assert np.all(np.diff(radii) > 0)
    assert np.allclose(power[1:], 1.0, rtol=0.2)  # orthonormal DFT: unit power per bin
    other = rng.standard_normal((64, 1, 32, 32))
    _inside, outside = band_split(other, BAND)
    assert spectrum_distance(white, other) < 0.5
    assert spectrum_distance(white, outside) > 3 * spectrum_distance(white, other)


def test_gaussian_frechet_closed_form() -> None:
    d = 4
    mu = np.arange(d, dtype=float)
    cov = np.diag([1.0, 2.0, 3.0, 4.0])
    assert gaussian_frechet(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-4)
    # Diagonal covariances: Σ (√a − √b)² plus the mean term.
    cov_b = np.diag([4.0, 2.0, 1.0, 9.0])
    expected = 1.0 + sum(
        (math.sqrt(a) - math.sqrt(b)) ** 2 for a, b in zip([1, 2, 3, 4], [4, 2, 1, 9], strict=True)
    )
    assert gaussian_frechet(mu, cov, mu + np.eye(d)[0], cov_b) == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_frechet_distance_separates_clean_from_corrupted_digits(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagd_core.data import apply_corruption, load_builtin, parse_corruption
    from sagd_core.metrics import frechet_distance
    from sagd_core.metrics.frechet import digits_feature_extractor

    monkeypatch.setenv("SAGD_CACHE_DIR", str(tmp_path))
    digits_feature_extractor.cache_clear()
    extractor = digits_feature_extractor(16)
    assert extractor.accuracy > 0.85
    a = load_builtin("digits", image_size=16, split="train", count=400)
    b = load_builtin("digits", image_size=16, split="test")
    c = apply_corruption(
        b, parse_corruption({"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": 1.0}), seed=0
    )
    clean = frechet_distance(a, b)
    assert frechet_distance(a, c) > 10 * clean
    # Second load comes from the safetensors cache and gives the same features.
    digits_feature_extractor.cache_clear()
    again = digits_feature_extractor(16)
    np.testing.assert_allclose(again(b[:5]), extractor(b[:5]), rtol=1e-6)
