"""The omission model's calibrated denoising blend (``denoise_calibration``/``denoise_blend``):
fitted on held-out corrupted images whose trusted bands are clean, it must not make a denoiser
worse and must fix a miscalibrated one."""

from __future__ import annotations

import numpy as np

from sagd_core.calibration.denoise import calibrate_denoiser
from sagd_core.restore import ModelSet, RestoreRequest, restore
from sagd_core.restore.gaussian_oracle import oracle_model, sample_gaussian_images
from sagd_core.restore.methods.denoise_blend import find_calibration
from sagd_core.spectral import NoiseSpec, parse_band_spec
from sagd_core.spectral.masks import band_mask

SPEC = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
S = 0.1


def _out_of_band_error(model: object, images: np.ndarray, clean: np.ndarray) -> float:
    keep = 1.0 - band_mask(SPEC, 16, 16)
    total = 0.0
    for y, x in zip(images, clean, strict=True):
        res = restore(
            np.transpose((y + 1.0) / 2.0, (1, 2, 0)),
            RestoreRequest(method="sagd", band=SPEC, steps=10, input_noise_std=S),
            ModelSet(omission=model),
        )  # type: ignore[arg-type]
        out = np.transpose(2.0 * res.unclipped - 1.0, (2, 0, 1))
        diff = np.fft.rfft2(out - x, norm="ortho") * keep
        total += float((np.abs(diff) ** 2).sum())
    return total


def test_blend_fixes_a_miscalibrated_denoiser_and_applies_only_at_its_noise_level() -> None:
    clean = sample_gaussian_images(40, 1, 16, 16, seed=2)
    noisy = clean + S * np.random.default_rng(3).standard_normal(clean.shape)
    # A Wiener oracle that believes the images hold 200× their power: it under-denoises.
    model = oracle_model("omission", NoiseSpec(omit=SPEC), band=SPEC, spectrum={"scale": 4.0})
    before = _out_of_band_error(model, noisy[32:], clean[32:])
    calib = calibrate_denoiser(model, clean[:32], SPEC, S, steps=10)
    assert len(calib["a"]) == len(calib["b"]) == len(calib["ring_edges"]) - 1
    after = _out_of_band_error(model, noisy[32:], clean[32:])
    best = _out_of_band_error(
        oracle_model("omission", NoiseSpec(omit=SPEC), band=SPEC), noisy[32:], clean[32:]
    )  # the true prior's posterior mean
    assert after < before - 0.5 * (before - best) and after < 1.05 * best
    assert find_calibration(model, S * 1.05) is not None
    assert find_calibration(model, S * 1.5) is None
    image = np.linspace(0.2, 0.8, 256, dtype=np.float32).reshape(16, 16)
    res = restore(
        image,
        RestoreRequest(method="sagd", band=SPEC, steps=10, input_noise_std=S),
        ModelSet(omission=model),
    )
    assert res.report["details"]["denoise"]["calibrated_blend"] is True
    res = restore(
        image,
        RestoreRequest(method="sagd", band=SPEC, steps=10, input_noise_std=2 * S),
        ModelSet(omission=model),
    )
    assert res.report["details"]["denoise"]["calibrated_blend"] is False


def test_blend_does_not_hurt_an_optimal_denoiser() -> None:
    clean = sample_gaussian_images(40, 1, 16, 16, seed=4)
    noisy = clean + S * np.random.default_rng(5).standard_normal(clean.shape)
    model = oracle_model("omission", NoiseSpec(omit=SPEC), band=SPEC)  # the true prior
    before = _out_of_band_error(model, noisy[32:], clean[32:])
    calibrate_denoiser(model, clean[:32], SPEC, S, steps=10)
    assert _out_of_band_error(model, noisy[32:], clean[32:]) < 1.02 * before
