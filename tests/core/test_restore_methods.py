"""DDNM and SAGD restoration with exact Gaussian (Wiener) ε-models (DESIGN.md §4).

The oracle models of :mod:`sagd_core.restore.gaussian_oracle` have a known posterior, so these
tests check the restoration code against the truth without training anything.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from sagd_core.restore import (
    ModelMismatchError,
    ModelSet,
    RestoreRequest,
    restore,
)
from sagd_core.restore.gaussian_oracle import (
    oracle_model,
    power_law_spectrum,
    sample_gaussian_images,
)
from sagd_core.restore.methods.sagd import as_raw_fill
from sagd_core.restore.models import LoadedModel
from sagd_core.spectral import BandSpec, NoiseSpec, band_mask, parse_band_spec
from sagd_core.spectral.grid import half_grid_multiplicity

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
OTHER = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.32, "high": 0.45}]})
SPECTRUM = {"scale": 0.002}  # high frequencies below the noise: denoising has work to do
H = W = 32


def _omission(band: BandSpec = BAND, channels: int = 1) -> LoadedModel:
    return oracle_model(
        "omission", NoiseSpec(omit=band), band=band, channels=channels, spectrum=SPECTRUM
    )


def _band(band: BandSpec = BAND) -> LoadedModel:
    """The oracle band model, its fill run as it is (no probe-band guard: these tests check the
    fill itself, on clean images where the guard rightly prefers the classical tier)."""
    model = oracle_model("band", NoiseSpec(kind="band", band=band), band=band, spectrum=SPECTRUM)
    return as_raw_fill(model)


def _full() -> LoadedModel:
    return oracle_model("full", NoiseSpec(), spectrum=SPECTRUM)


def _clean(seed: int = 3, h: int = H, w: int = W) -> np.ndarray:
    return sample_gaussian_images(1, 1, h, w, seed=seed, **SPECTRUM)[0, 0]


def _clean_and_noisy(std: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_clean` and a copy with white noise of ``std`` added."""
    x = _clean()
    return x, x + std * np.random.default_rng(0).standard_normal(x.shape)


def _unit(x: np.ndarray) -> np.ndarray:
    return ((x + 1.0) / 2.0).astype(np.float32)


def _trusted_error(estimate: np.ndarray, truth: np.ndarray, band: BandSpec = BAND) -> float:
    h, w = truth.shape
    trusted = band_mask(band, h, w) == 0
    diff = np.fft.rfft2(estimate - truth, norm="ortho") * trusted
    return float(np.sqrt((np.abs(diff) ** 2 * half_grid_multiplicity(h, w)).sum()))


def test_sagd_with_omission_model_and_no_noise_equals_the_notch() -> None:
    y = _unit(_clean())
    notch = restore(y, RestoreRequest(band=BAND, method="notch"))
    sagd = restore(
        y,
        RestoreRequest(band=BAND, method="sagd", steps=10, samples=3),
        ModelSet(omission=_omission()),
    )
    np.testing.assert_allclose(sagd.unclipped, notch.unclipped, atol=1e-6)
    assert sagd.report["out_of_band_residual"] <= 1e-5
    assert sagd.report["bands"][0]["action"] == "omitted"
    assert "cannot fill" in sagd.report["bands"][0]["reason"]
    assert sagd.uncertainty is None and sagd.report["samples"] == 1


def test_sagd_denoises_trusted_bands_like_the_wiener_filter() -> None:
    s = 0.2
    x, y = _clean_and_noisy(s)
    res = restore(
        _unit(y),
        RestoreRequest(band=BAND, method="sagd", steps=20, input_noise_std=s),
        ModelSet(omission=_omission()),
    )
    out = 2.0 * res.unclipped - 1.0
    wiener_gain = power_law_spectrum(H, W, **SPECTRUM)
    wiener_gain = wiener_gain / (wiener_gain + s**2)
    wiener = np.fft.irfft2(np.fft.rfft2(y, norm="ortho") * wiener_gain, s=(H, W), norm="ortho")
    err_noisy, err_out = _trusted_error(y, x), _trusted_error(out, x)
    err_wiener = _trusted_error(wiener, x)
    assert err_out < 0.7 * err_noisy
    assert err_out == pytest.approx(err_wiener, rel=0.1)
    assert res.report["band_energy_total"]["after"] < 1e-12  # the band stays omitted
    assert res.report["trusted"].startswith("denoised")


def test_sample_estimator_gives_posterior_samples_around_the_mean() -> None:
    x = _clean()
    s = 0.2
    y = _unit(x + s * np.random.default_rng(0).standard_normal(x.shape))
    req = RestoreRequest(band=BAND, method="sagd", steps=20, input_noise_std=s)
    mean = restore(y, req, ModelSet(omission=_omission()))
    one = restore(y, req.model_copy(update={"estimator": "sample"}), ModelSet(omission=_omission()))
    many = restore(
        y,
        req.model_copy(update={"estimator": "sample", "samples": 6}),
        ModelSet(omission=_omission()),
    )
    e_mean = _trusted_error(2 * mean.unclipped - 1, x)
    e_one = _trusted_error(2 * one.unclipped - 1, x)
    e_many = _trusted_error(2 * many.unclipped - 1, x)
    assert e_mean < e_many < e_one  # a sample's error is ~√2 the MMSE; averaging helps
    assert many.uncertainty is not None and many.uncertainty.shape == y.shape
    assert float(many.uncertainty.mean()) > 0


def test_band_model_fills_the_band_and_keeps_trusted_bins_exact() -> None:
    y = _unit(_clean())
    res = restore(
        y,
        RestoreRequest(band=BAND, method="sagd", steps=20, samples=4, seed=1),
        ModelSet(band=_band(), omission=_omission()),
    )
    assert res.report["out_of_band_residual"] <= 1e-5
    assert res.report["bands"][0]["action"] == "filled"
    assert res.report["band_energy_total"]["after"] > 0
    assert res.uncertainty is not None and res.uncertainty.shape == y.shape
    again = restore(
        y,
        RestoreRequest(band=BAND, method="sagd", steps=20, samples=4, seed=1),
        ModelSet(band=_band()),
    )
    np.testing.assert_array_equal(again.unclipped, res.unclipped)  # seeded
    other = restore(
        y,
        RestoreRequest(band=BAND, method="sagd", steps=20, samples=4, seed=2),
        ModelSet(band=_band()),
    )
    assert not np.allclose(other.unclipped, res.unclipped)


@pytest.mark.slow
def test_band_fill_variance_approaches_the_prior_with_many_steps() -> None:
    """For stationary Gaussian data the band is independent of the rest, so the posterior of
    the band is its prior: per-pixel sample variance → Σ_band λ / (H W)."""
    h = w = 16
    y = _unit(_clean(h=h, w=w))
    mask = band_mask(BAND, h, w)
    expected = float(
        (power_law_spectrum(h, w, **SPECTRUM) * mask * half_grid_multiplicity(h, w)).sum()
    ) / (h * w)
    res = restore(
        y,
        RestoreRequest(band=BAND, method="sagd", steps=500, samples=16, estimator="sample"),
        ModelSet(band=_band()),
    )
    assert res.uncertainty is not None
    measured = float((4.0 * res.uncertainty.astype(np.float64) ** 2).mean())
    assert measured == pytest.approx(expected, rel=0.3)


def test_ddnm_keeps_trusted_part_exact_and_fills_the_band() -> None:
    y = _unit(_clean())
    res = restore(
        y, RestoreRequest(band=BAND, method="ddnm", steps=20, samples=2), ModelSet(full=_full())
    )
    assert res.report["out_of_band_residual"] <= 1e-5
    assert res.report["bands"][0]["action"] == "filled"
    assert res.report["band_energy_total"]["after"] > 0
    assert res.uncertainty is not None


def test_ddnm_with_declared_noise_denoises_the_trusted_part() -> None:
    s = 0.2
    x, y = _clean_and_noisy(s)
    res = restore(
        _unit(y),
        RestoreRequest(band=BAND, method="ddnm", steps=30, samples=4, input_noise_std=s),
        ModelSet(full=_full()),
    )
    assert _trusted_error(2 * res.unclipped - 1, x) < 0.8 * _trusted_error(y, x)


def test_methods_refuse_missing_or_mismatched_models() -> None:
    y = _unit(_clean())
    with pytest.raises(ModelMismatchError, match="full-support"):
        restore(y, RestoreRequest(band=BAND, method="ddnm"), ModelSet(band=_band()))
    with pytest.raises(ModelMismatchError, match="different band"):
        restore(y, RestoreRequest(band=BAND, method="sagd", steps=5), ModelSet(band=_band(OTHER)))
    with pytest.raises(ModelMismatchError, match="different band"):
        restore(
            y,
            RestoreRequest(band=BAND, method="sagd", steps=5, input_noise_std=0.1),
            ModelSet(omission=_omission(OTHER)),
        )
    rgb = np.stack([y, y[::-1], y.T], axis=-1)
    with pytest.raises(ModelMismatchError, match="channel"):
        restore(rgb, RestoreRequest(band=BAND, method="sagd", steps=5), ModelSet(band=_band()))
    with pytest.raises(ModelMismatchError, match="role 'band'"):
        ModelSet.from_models([_band(), _band()])
    standard = oracle_model("standard", NoiseSpec(), spectrum=SPECTRUM)
    with pytest.raises(ModelMismatchError, match="standard"):
        ModelSet.from_models([standard])
    grouped = ModelSet.from_models([_band(), _full()])
    assert grouped.roles() == ["band", "full"]


def test_noise_without_omission_model_is_reported() -> None:
    y = _unit(_clean())
    res = restore(y, RestoreRequest(band=BAND, method="sagd", input_noise_std=0.1))
    assert any("no omission model" in w for w in res.report["warnings"])
    assert res.report["out_of_band_residual"] <= 1e-5


@pytest.mark.parametrize("estimator", ["sample", "mean"])
def test_progress_counts_every_step_of_every_tile(estimator: Literal["mean", "sample"]) -> None:
    y = _unit(_clean(h=40, w=40))
    seen: list[tuple[int, int]] = []
    res = restore(
        y,
        RestoreRequest(band=BAND, method="sagd", steps=7, estimator=estimator),
        ModelSet(band=_band()),
        tile_size=24,
        tile_overlap=8,
        progress=lambda d, t: seen.append((d, t)),
    )
    steps = res.report["details"]["fill"]["steps"]
    assert steps == 7 if estimator == "sample" else 1 <= steps <= 7
    assert {t for _, t in seen} == {steps * 4}
    assert [d for d, _ in seen] == list(range(1, steps * 4 + 1))


def test_mean_estimator_fill_is_the_posterior_mean_not_a_sample() -> None:
    """Gaussian data: the band is independent of the rest, so its posterior mean is 0 and a
    sample has the prior's energy. The Rao–Blackwellised mean must sit far below a sample."""
    y = _unit(_clean())
    req = RestoreRequest(band=BAND, method="sagd", steps=30, samples=4)
    mean = restore(y, req, ModelSet(band=_band()))
    sample = restore(
        y, req.model_copy(update={"estimator": "sample", "samples": 1}), ModelSet(band=_band())
    )
    e_mean = mean.report["band_energy_total"]["after"]
    e_sample = sample.report["band_energy_total"]["after"]
    assert e_mean < 0.3 * e_sample
    assert mean.report["details"]["fill"]["steps"] < 30  # the chains stop early


def test_fill_gain_calibration_on_corrupted_images() -> None:
    from sagd_core.calibration.fill import calibrate_fill_gain

    # Gaussian data with independent bands: the fill cannot predict the band, so the
    # Noise2Noise gain estimated from corrupted images is ~0 and SAGD falls back to the notch.
    clean = sample_gaussian_images(6, 1, H, W, seed=11, **SPECTRUM)
    noise = sample_gaussian_images(6, 1, H, W, seed=12, scale=1.0, r0=1.0, exponent=0.0)
    inside = np.fft.irfft2(
        np.fft.rfft2(noise, norm="ortho") * band_mask(BAND, H, W), s=(H, W), norm="ortho"
    )
    model = _band()
    calib = calibrate_fill_gain(model, clean + inside, BAND, steps=20, samples=2)
    assert 0.0 <= calib["gain"] <= 0.35
    assert model.meta["fill_calibration"]["gain"] == calib["gain"]
    y = _unit(_clean())
    res = restore(
        y, RestoreRequest(band=BAND, method="sagd", steps=20, samples=2), ModelSet(band=model)
    )
    assert res.report["details"]["fill"]["gain"] == calib["gain"]
