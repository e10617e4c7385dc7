"""The guard of a sampled learned fill (``sagd_core.restore.methods.sagd``, point 4 of its
docstring): per image, a probe made by decimating the classical tier's result so that the band
holds known clean content (``classical.guard.scaled_probe``) decides per region between the
learned fill and the classical tier, and a fill calibration measured at another size is not
trusted. (The one-call read's guard, on recorrupted copies of the image, is tested in
``test_one_call_restore.py``.)"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest
import torch
from torch import nn

from sagd_core.data import apply_corruption, parse_corruption
from sagd_core.models import UNet
from sagd_core.restore import ModelSet, RestoreRequest, restore
from sagd_core.restore.gaussian_oracle import oracle_model, sample_gaussian_images
from sagd_core.restore.methods.classical.guard import probe_region_errors, scaled_probe
from sagd_core.restore.methods.sagd import as_raw_fill
from sagd_core.restore.models import LoadedModel
from sagd_core.restore.report import region_specs
from sagd_core.spectral import NoiseSpec
from sagd_core.spectral.masks import band_mask
from sagd_core.training.checkpoints import TrainedModel

CORRUPTION = {"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": 0.2}
BAND = parse_corruption(CORRUPTION).band_spec()
SPECTRUM = {"scale": 0.002}
SIZE = 64


def _image(size: int = SIZE, seed: int = 5) -> np.ndarray:
    """A Gaussian ``1/f²`` image corrupted by band noise, in [0, 1] (H, W)."""
    clean = sample_gaussian_images(1, 1, size, size, seed=seed, **SPECTRUM)
    corrupted = apply_corruption(clean, parse_corruption(CORRUPTION), seed=seed + 1)
    return ((corrupted[0, 0] + 1.0) / 2.0).astype(np.float64)


class JunkEps(nn.Module):
    """A "network" whose ε makes x̂₀ carry a strong band-limited pattern: a fill that regenerates
    something that is not there (what issue #18 saw at 256²)."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        del t
        h, w = x.shape[-2:]
        gen = torch.Generator().manual_seed(h * 1000 + w)
        pattern = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float64)
        inside = torch.as_tensor(band_mask(BAND, h, w).copy())
        spectrum = torch.fft.rfft2(pattern, norm="ortho") * inside
        return (-3.0 * torch.fft.irfft2(spectrum, s=(h, w), norm="ortho")).to(x.dtype)


def _band_oracle(calibration: dict[str, Any] | None = None) -> LoadedModel:
    model = oracle_model("band", NoiseSpec(kind="band", band=BAND), band=BAND, spectrum=SPECTRUM)
    if calibration is not None:
        model.meta["fill_calibration"] = calibration
    return model


def _junk(calibration: dict[str, Any]) -> LoadedModel:
    good = _band_oracle()
    meta: dict[str, Any] = {"fill_calibration": calibration}
    return TrainedModel(
        net=cast(UNet, JunkEps()),
        config=good.config,
        schedule=good.schedule,
        meta=meta,
        device=torch.device("cpu"),
    )


def _request(**extra: Any) -> RestoreRequest:
    return RestoreRequest(band=BAND, method="sagd", steps=10, samples=2, seed=1, **extra)


def test_the_scaled_probe_hides_clean_trusted_content_in_the_band() -> None:
    """The probe's band holds what the reference had at trusted bins (half the frequency), and
    the synthetic noise sits in the band only."""
    reference = 2.0 * _image()[None] - 1.0
    subs = region_specs(BAND)
    probe = scaled_probe(reference, BAND, subs, [[0.01]])
    assert probe is not None and probe.factor == 2 and probe.clean.shape == (1, 32, 32)
    spec_ref = np.fft.rfft2(reference, norm="ortho")
    spec_probe = np.fft.rfft2(probe.clean, norm="ortho")
    inside = probe.regions[0] > 0
    rows, cols = np.nonzero(inside)
    rows = np.where(rows >= 16, rows - 32, rows) % SIZE  # the same signed frequency index
    source = band_mask(BAND, SIZE, SIZE)[rows, cols]
    assert np.all(source == 0)  # every probe-band bin comes from a trusted bin
    np.testing.assert_allclose(spec_probe[0][inside], spec_ref[0, rows, cols] / 2.0, atol=1e-12)
    noise = np.fft.rfft2(probe.observed - probe.clean, norm="ortho")
    assert float(np.abs(noise[0][~inside]).max()) < 1e-12
    assert float(np.abs(noise[0][inside]).mean()) > 0.05
    # The clean content itself scores zero; the noisy observation scores the noise's energy.
    assert probe_region_errors(probe, probe.clean) == [0.0]
    assert probe_region_errors(probe, probe.observed)[0] > 0.0
    assert scaled_probe(reference[:, :24, :24], BAND, subs, [[0.01]]) is None  # 12 px: too small


def test_a_fill_that_loses_on_the_probe_falls_back_to_the_classical_tier() -> None:
    """A calibration at this very size says gain 1, yet the fill regenerates a pattern: the
    guard catches it on this image and returns the classical tier's estimate."""
    y = _image()
    model = _junk({"gain": 1.0, "size": [SIZE, SIZE]})
    res = restore(y, _request(), ModelSet(band=model))
    guard = res.report["details"]["guard"]
    region = guard["regions"][0]
    assert region["chosen"] == "classical"
    assert region["learned_error"] > region["fallback_error"] > 0.0
    assert guard["gain_on_the_spot"] is None  # the calibration holds at this size
    band = res.report["bands"][0]
    assert band["action"] in ("denoised", "omitted")  # the classical tier's own verdict
    assert band["reason"].startswith("fallback to the classical tier")
    lost = [w for w in res.report["warnings"] if "lost to the classical tier" in w]
    assert len(lost) == 1
    assert f"{region['learned_error']:.4g}" in lost[0]
    assert f"{region['fallback_error']:.4g}" in lost[0]
    classical = restore(y, RestoreRequest(band=BAND, method="classical"))
    np.testing.assert_allclose(res.unclipped, classical.unclipped, atol=1e-9)
    assert res.report["out_of_band_residual"] <= 1e-5


def test_a_calibration_measured_at_another_size_is_replaced_by_a_gain_fitted_on_the_probe() -> None:
    y = _image()
    stale = _band_oracle({"gain": 0.5, "size": [32, 32]})
    res = restore(y, _request(), ModelSet(band=stale))
    guard = res.report["details"]["guard"]
    assert "measured at 32×32, not at this restore's 64×64" in guard["calibration"]
    spot = guard["gain_on_the_spot"]
    assert spot is not None and 0.0 <= spot <= 1.0
    assert res.report["details"]["fill"]["gain"] == spot
    assert any("calibrated on the spot" in w and "32×32" in w for w in res.report["warnings"])

    fresh = _band_oracle({"gain": 0.5, "size": [SIZE, SIZE]})
    kept = restore(y, _request(), ModelSet(band=fresh))
    assert kept.report["details"]["guard"]["gain_on_the_spot"] is None
    assert kept.report["details"]["fill"]["gain"] == 0.5
    assert not any("calibrated on the spot" in w for w in kept.report["warnings"])

    unsized = restore(y, _request(), ModelSet(band=_band_oracle({"gain": 0.5})))
    assert "did not record the size" in unsized.report["details"]["guard"]["calibration"]
    assert unsized.report["details"]["guard"]["gain_on_the_spot"] is not None


@pytest.mark.parametrize("calibrated", [False, True])
def test_without_a_probe_an_uncalibrated_fill_is_not_used(calibrated: bool) -> None:
    """At 16² no probe of at least 16 px fits: an uncalibrated fill gives way to the classical
    tier with a warning; one calibrated at this size is kept, unchecked, with a warning."""
    y = _image(size=16)
    calibration = {"gain": 1.0, "size": [16, 16]} if calibrated else None
    res = restore(y, _request(), ModelSet(band=_band_oracle(calibration)))
    guard = res.report["details"]["guard"]
    assert guard["probe"] is None
    band = res.report["bands"][0]
    if calibrated:
        assert band["action"] == "filled" and band["reason"].endswith("not checked")
        assert any("was not checked on this image" in w for w in res.report["warnings"])
    else:
        assert band["action"] != "filled"
        assert any(
            "no fill calibration, and no probe band fits" in w for w in res.report["warnings"]
        )
        classical = restore(y, RestoreRequest(band=BAND, method="classical"))
        np.testing.assert_allclose(res.unclipped, classical.unclipped, atol=1e-9)


def test_the_calibration_run_itself_is_not_guarded() -> None:
    """The fill calibration restores with ``RAW_FILL`` set: the fill as it is, no guard."""
    y = _image()
    model = as_raw_fill(_junk({"gain": 1.0, "size": [SIZE, SIZE]}))
    res = restore(y, _request(), ModelSet(band=model))
    assert "guard" not in res.report["details"]
    assert res.report["bands"][0]["action"] == "filled"


def test_with_declared_noise_and_no_omission_model_the_trusted_bands_are_the_classical_tiers() -> (
    None
):
    """Declared broadband noise and a band model alone: nothing learned denoises the trusted
    bands, so they come from the classical tier's estimate (the guard's fallback, denoised for
    that noise) instead of being returned noisy; the report says so."""
    rng = np.random.default_rng(3)
    y = np.clip(_image() + 0.02 * rng.standard_normal((SIZE, SIZE)), 0.0, 1.0)
    res = restore(y, _request(input_noise_std=0.04), ModelSet(band=_band_oracle()))
    classical = restore(y, RestoreRequest(band=BAND, method="classical", input_noise_std=0.04))
    outside = 1.0 - band_mask(BAND, SIZE, SIZE, half=False)

    def trusted(img: np.ndarray) -> np.ndarray:
        return np.fft.fft2(img) * outside

    np.testing.assert_allclose(trusted(res.unclipped), trusted(classical.unclipped), atol=1e-8)
    assert not np.allclose(trusted(res.unclipped), trusted(y), atol=1e-3)
    assert res.report["trusted"] == "denoised by the classical tier (no omission model given)"
    assert any(
        "the trusted bands are the classical tier's estimate" in w for w in res.report["warnings"]
    )
