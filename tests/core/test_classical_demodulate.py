"""A multiplicative screen (halftone, moiré) is divided out, not subtracted: the damped
alternation of fit and division recovers the image far better than the one-pass subtraction with
an envelope taken from the corrupted image, and the classical tier picks the division for a
screen while an additive interference keeps its subtraction."""

from __future__ import annotations

import numpy as np

from sagd_core.restore.engine import restore
from sagd_core.restore.methods.classical.demodulate import demodulate
from sagd_core.restore.methods.classical.sinusoid import _fit, hann2d
from sagd_core.restore.request import RestoreRequest
from sagd_core.spectral.bands import BandSpec, Notch
from sagd_core.spectral.fft import apply_gain
from sagd_core.spectral.masks import band_mask
from tests.core.test_restore_classical import periodic, psnr, scene, training_photo

LINES = [(0.16, 0.07), (-0.07, 0.16)]


def screened(x: np.ndarray, sigma: float = 0.0) -> tuple[np.ndarray, BandSpec]:
    """``x (1 + 0.15 s)`` with ``s`` two cosines and 0.35× their second harmonics."""
    n = x.shape[0]
    yy, xx = np.mgrid[:n, :n].astype(np.float64)
    s = sum(np.cos(2 * np.pi * (a * yy + b * xx)) for a, b in LINES) + 0.35 * sum(
        np.cos(2 * np.pi * (2 * a * yy + 2 * b * xx)) for a, b in LINES
    )
    y = x * (1.0 + 0.15 * (s if x.ndim == 2 else s[..., None]))
    y = y + np.random.default_rng(3).normal(0, sigma, x.shape)
    spec = BandSpec(
        regions=[Notch(fy=k * a, fx=k * b, radius=0.012) for k in (1, 2) for a, b in LINES]
    )
    return y, spec


def test_the_division_beats_the_one_pass_subtraction_of_a_screen() -> None:
    x = 2.0 * training_photo("camera", 128)[None] - 1.0  # model range
    y, spec = screened(training_photo("camera", 128))
    y = 2.0 * y[None] - 1.0
    freqs = [(k * a, k * b) for k in (1, 2) for a, b in LINES]
    envelope = apply_gain(y, 1.0 - band_mask(spec, 128, 128))
    envelope -= envelope.mean(axis=(1, 2), keepdims=True)
    window = hann2d(128, 128)
    _, fitted = _fit(y, window, freqs, envelope)
    hanning = (np.hanning(128), np.hanning(128))  # hann2d(128, 128) as 1-D factors
    assert np.allclose(np.outer(*hanning), window)
    divided, coefs = demodulate(y, freqs, hanning, envelope)

    def db(a: np.ndarray) -> float:
        return float(10 * np.log10(4.0 / np.mean((a - x) ** 2)))

    assert db(divided) > db(y - fitted) + 3.0
    assert coefs.shape == (8, 1)


def test_the_separable_normal_equations_match_the_design_matrix() -> None:
    """The fit read off projections on 1-D factors is the weighted least squares of the columns
    ``[1, lines, lines · e]`` built in full, pass after pass (odd sizes, three lines)."""
    from sagd_core.restore.methods.classical import demodulate as module
    from sagd_core.restore.methods.classical.sinusoid import _carriers

    rng = np.random.default_rng(11)
    h, w = 37, 52
    freqs = [(0.11, 0.23), (-0.19, 0.07), (0.3, -0.02)]
    y = rng.standard_normal((2, h, w))
    envelope = rng.standard_normal((2, h, w))
    wy, wx = np.hanning(h), np.hanning(w)
    out, coefs = demodulate(y, freqs, (wy, wx), envelope)

    carriers, weight = _carriers(h, w, freqs), np.outer(wy, wx).ravel()
    for ch in range(2):
        target, env = y[ch].ravel(), envelope[ch].ravel()
        for _ in range(module.PASSES):
            cols = np.concatenate([np.ones((h * w, 1)), carriers, carriers * env[:, None]], 1)
            gram = cols.T @ (cols * weight[:, None])
            gram[np.diag_indices_from(gram)] += 1e-9 * np.trace(gram) / gram.shape[0]
            coef = np.linalg.solve(gram, cols.T @ (weight * target))
            k2 = carriers.shape[1]
            gain = np.maximum(1.0 + carriers @ coef[1 + k2 :], module.MIN_GAIN)
            estimate = coef[0] + (target - coef[0] - carriers @ coef[1 : 1 + k2]) / gain
            env = (1.0 - module.STEP) * env + module.STEP * (estimate - estimate.mean())
        assert np.allclose(out[ch].ravel(), estimate, atol=1e-10)
        assert np.allclose(coefs[:, ch], coef[1 : 1 + k2], atol=1e-10)


def test_a_screen_is_divided_out_and_its_sidebands_reported() -> None:
    x = scene(4, channels=3)
    for sigma in (0.0, 0.02):
        y, spec = screened(x, sigma)
        result = restore(
            y, RestoreRequest(band=spec, method="classical", input_noise_std=2 * sigma)
        )
        notch = restore(y, RestoreRequest(band=spec, method="notch", input_noise_std=2 * sigma))
        assert psnr(result.unclipped, x) > psnr(notch.unclipped, x) + 3.0
        for entry in result.report["details"]["regions"]:
            comps = entry["components"]
            assert comps[0]["modulated"] and not comps[0]["sideband"]
            assert all(c["sideband"] for c in comps[1:])


def test_an_additive_interference_keeps_the_subtraction() -> None:
    x = scene(1, channels=1)
    y, spec = periodic(x)
    result = restore(y, RestoreRequest(band=spec, method="classical"))
    comps = [c for e in result.report["details"]["regions"] for c in e["components"]]
    assert not any(c["sideband"] for c in comps)
    assert psnr(result.unclipped, x) > 45.0
