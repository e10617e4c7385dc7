"""Errors of band estimators estimated on the image itself by recorruption
(``sagd_core.restore.methods.recorrupted_risk``): unbiased for linear and for discontinuous
estimators (where Stein's estimate is not), per region, and exact where a region has no noise."""

from __future__ import annotations

import numpy as np

from sagd_core.restore.methods.recorrupted_risk import ALPHA, recorrupt, region_errors
from sagd_core.spectral.fft import irfft2, rfft2
from sagd_core.spectral.grid import half_grid_multiplicity

H = W = 128
LEVEL = 0.04  # noise power per bin in the band


def _radius() -> np.ndarray:
    return np.hypot(np.fft.fftfreq(H)[:, None], np.fft.rfftfreq(W)[None, :])


def _band() -> np.ndarray:
    r = _radius()
    return ((r >= 0.15) & (r < 0.3)).astype(np.float64)


def _clean(seed: int) -> np.ndarray:
    power = 5e-4 / (1e-3 + _radius() ** 2)
    rng = np.random.default_rng(seed)
    return irfft2(rfft2(rng.standard_normal((1, H, W))) * np.sqrt(power), H, W)


def _noise(seed: int, level: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return irfft2(rfft2(rng.standard_normal((1, H, W))) * np.sqrt(level * _band()), H, W)


def _error(estimate: np.ndarray, x: np.ndarray, region: np.ndarray) -> float:
    d = rfft2(estimate - x)
    return float(((d.real**2 + d.imag**2) * half_grid_multiplicity(H, W) * region).sum())


def test_the_estimate_is_unbiased_for_linear_and_discontinuous_estimators() -> None:
    """Mean over noise draws of the estimated error against the mean true error of the same
    estimator at the recorrupted level ``(1 + α²) LEVEL``; a hard threshold (discontinuous in
    ``y``) included, and the three ranked as the truth ranks them."""
    band = _band()
    x = _clean(1)
    power = 5e-4 / (1e-3 + _radius() ** 2)
    level = (1.0 + ALPHA**2) * LEVEL
    gain = band * power / (power + level) + (1.0 - band)

    def notch(v: np.ndarray) -> np.ndarray:
        return irfft2(rfft2(v) * (1.0 - band), H, W)

    def wiener(v: np.ndarray) -> np.ndarray:
        return irfft2(rfft2(v) * gain, H, W)

    def hard(v: np.ndarray) -> np.ndarray:
        f = rfft2(v)
        keep = (f.real**2 + f.imag**2) > 3.0 * level
        return irfft2(f * np.where(band > 0, keep, True), H, W)

    estimated = {f.__name__: [] for f in (notch, wiener, hard)}
    true = {name: [] for name in estimated}
    for seed in range(8):
        y = x + _noise(100 + seed, LEVEL)
        for f in (notch, wiener, hard):
            (e,) = region_errors(recorrupt(y, [band], [[LEVEL]]), f)
            estimated[f.__name__].append(e)
            true[f.__name__].append(_error(f(y + ALPHA * _noise(200 + seed, LEVEL)), x, band))
    trace = LEVEL * float((half_grid_multiplicity(H, W) * band).sum())
    means = {name: (np.mean(estimated[name]), np.mean(true[name])) for name in estimated}
    for name, (est, tru) in means.items():
        assert abs(est - tru) < 0.1 * trace, (name, est, tru, trace)
    order = sorted(means, key=lambda n: means[n][0])
    assert order == sorted(means, key=lambda n: means[n][1]) and order[0] == "wiener"


def test_errors_are_per_region_and_exact_where_a_region_has_no_noise() -> None:
    band = _band()
    low = band * (_radius() < 0.2)
    high = band - low
    x = _clean(2)
    y = x + irfft2(rfft2(_noise(3, LEVEL)) * low, H, W)  # noise in the low part only
    pairs = recorrupt(y, [low, high], [[LEVEL], [0.0]])
    assert pairs.offsets[1] == 0.0 and pairs.offsets[0] > 0.0
    for y1, y2 in zip(pairs.inputs, pairs.targets, strict=True):
        np.testing.assert_allclose(irfft2(rfft2(y1 - y) * high, H, W), 0.0, atol=1e-12)
        np.testing.assert_allclose(irfft2(rfft2(y2 - y) * high, H, W), 0.0, atol=1e-12)

    def notch(v: np.ndarray) -> np.ndarray:
        return irfft2(rfft2(v) * (1.0 - band), H, W)

    _, err_high = region_errors(pairs, notch)
    assert err_high == np.float64(err_high) and abs(err_high - _error(notch(y), x, high)) < 1e-9
