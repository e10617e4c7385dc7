"""``auto``'s band-reader route (``sagd_core.restore.methods.band_read``): taken on noise-like
bands without a qualifying band model, guarded per region against the classical tier on
recorrupted copies of the image, and reported."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sagd_core.bench.default_read.build import reader_config
from sagd_core.data.dead_leaves import dead_leaves
from sagd_core.models.band_reader import BandReader
from sagd_core.restore import RestoreRequest, restore
from sagd_core.restore.auto import choose_route
from sagd_core.restore.methods import band_read
from sagd_core.spectral.bands import BandSpec

NOISE_BAND = BandSpec.model_validate({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
PERIODIC = BandSpec.model_validate(
    {"regions": [{"kind": "notch", "fy": 0.12, "fx": 0.05, "radius": 0.012}]}
)


def band_noise(size: int, channels: int, std: float, seed: int) -> np.ndarray:
    """Noise flat in :data:`NOISE_BAND` with pixel std ``std`` (``[0, 1]`` units)."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((size, size, channels))
    r = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    keep = ((r >= 0.15) & (r < 0.3))[..., None]
    out = np.fft.ifft2(np.fft.fft2(n, axes=(0, 1)) * keep, axes=(0, 1)).real
    out = out * std / out.std()
    return out[..., 0] if channels == 1 else out


def scene(size: int = 128, channels: int = 1, seed: int = 9) -> tuple[np.ndarray, np.ndarray]:
    clean = 0.1 + 0.8 * dead_leaves(size, channels, seed=seed)
    return clean, clean + band_noise(size, channels, 0.06, seed)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return -10.0 * math.log10(float(np.mean((a - b) ** 2)))


def test_route_takes_the_reader_on_noise_bands_and_on_fitted_bands_with_declared_noise() -> None:
    assert choose_route(RestoreRequest(band=NOISE_BAND, method="auto"), None).reader
    declared = RestoreRequest(band=NOISE_BAND, method="auto", input_noise_std=0.04)
    assert choose_route(declared, None).reader  # the reader takes the white level too
    # a sinusoid is the classical tier's alone, unless broadband noise is declared
    assert choose_route(RestoreRequest(band=PERIODIC, method="auto"), None).reader is None
    noisy = RestoreRequest(band=PERIODIC, method="auto", input_noise_std=0.04)
    assert "subtracted" in str(choose_route(noisy, None).reader)
    sampled = RestoreRequest(band=NOISE_BAND, method="auto", estimator="sample")
    assert choose_route(sampled, None).reader is None


def test_auto_reads_a_textured_scene_and_says_so() -> None:
    clean, y = scene()
    result = restore(y, RestoreRequest(band=NOISE_BAND, method="auto"))
    classical = restore(y, RestoreRequest(band=NOISE_BAND, method="classical"))
    details = result.report["details"]
    assert details["auto"]["chosen"] == "band reader"
    assert details["guard"]["regions"][0]["chosen"] == "learned"
    assert details["band_read"]["band_std"][0] == pytest.approx(0.26, rel=0.25)
    assert psnr(result.unclipped, clean) > psnr(classical.unclipped, clean) + 0.5
    # the trusted bands come back as given (no declared broadband noise), up to the float32 of
    # the result: as close as the notch's, which returns them exactly
    r = np.hypot(np.fft.fftfreq(128)[:, None], np.fft.fftfreq(128)[None, :])
    notch = restore(y, RestoreRequest(band=NOISE_BAND, method="notch")).unclipped
    for out in (result.unclipped, notch):
        residual = np.fft.fft2(out - y)[(r < 0.15) | (r >= 0.3)]
        assert float(np.abs(residual).max()) < 2e-5


def test_auto_reads_colour_images_channel_by_channel() -> None:
    clean, y = scene(channels=3)
    result = restore(y, RestoreRequest(band=NOISE_BAND, method="auto"))
    assert result.unclipped.shape == y.shape
    assert len(result.report["details"]["band_read"]["band_std"]) == 3
    assert psnr(result.unclipped, clean) > psnr(y, clean) + 3.0


@pytest.mark.parametrize("white", [0.0, 0.04])
def test_auto_falls_back_where_the_reader_loses(
    monkeypatch: pytest.MonkeyPatch, white: float
) -> None:
    """A reader with random weights writes nonsense into the band (and, with declared broadband
    noise, outside it): the guard keeps the classical estimate in the band's region and outside
    it, warns with both errors, and the result is the classical tier's."""
    torch.manual_seed(0)
    broken = BandReader(reader_config())
    torch.nn.init.normal_(broken.unet.conv_out.weight, std=1.0)
    monkeypatch.setattr(band_read, "default_reader", lambda: broken.eval())
    _, y = scene(seed=11)
    y = y + np.random.default_rng(4).normal(0.0, white / 2, y.shape)
    request = RestoreRequest(band=NOISE_BAND, method="auto", input_noise_std=white)
    result = restore(y, request)
    classical = restore(y, request.model_copy(update={"method": "classical"}))
    assert result.report["details"]["auto"]["chosen"] == "classical"
    lost = [w for w in result.report["warnings"] if "lost to the classical tier" in w]
    assert len(lost) == (2 if white else 1)
    if white:
        assert result.report["details"]["guard"]["outside"]["chosen"] == "classical"
    np.testing.assert_allclose(result.unclipped, classical.unclipped, atol=1e-9)


def test_auto_with_declared_broadband_noise_denoises_with_the_reader() -> None:
    clean, y = scene(seed=12)
    y = y + np.random.default_rng(3).normal(0.0, 0.02, y.shape)
    request = RestoreRequest(band=NOISE_BAND, method="auto", input_noise_std=0.04)
    result = restore(y, request)
    details = result.report["details"]
    assert details["band_read"]["white_std"] == pytest.approx(0.04)
    assert {"learned_error", "fallback_error", "chosen"} <= set(details["guard"]["outside"])
    assert psnr(result.unclipped, clean) > psnr(y, clean) + 3.0


def test_a_sinusoid_with_declared_noise_is_subtracted_then_read() -> None:
    """Periodic interference plus broadband noise on a textured scene: the classical fit is
    subtracted, the reader removes the noise, and the guard keeps it outside the band where it
    beats the classical tier's denoising; the result is then closer than the classical tier's."""
    size = 128
    clean = 0.1 + 0.8 * dead_leaves(size, 1, seed=13)
    yy, xx = np.mgrid[:size, :size]
    rng = np.random.default_rng(6)
    y = clean + 0.08 * np.cos(2 * np.pi * (0.12 * yy + 0.05 * xx) + 0.3)
    y = y + rng.normal(0.0, 0.02, y.shape)
    band = BandSpec.model_validate(
        {"regions": [{"kind": "notch", "fy": 0.12, "fx": 0.05, "radius": 0.02}]}
    )
    request = RestoreRequest(band=band, method="auto", input_noise_std=0.04)
    result = restore(y, request)
    classical = restore(y, request.model_copy(update={"method": "classical"}))
    details = result.report["details"]
    assert "subtracted" in details["band_read"]["after"]
    assert details["guard"]["outside"]["chosen"] == "learned"
    assert details["auto"]["chosen"] == "band reader"
    assert psnr(result.unclipped, clean) > psnr(classical.unclipped, clean) + 0.5


def test_the_reader_tiles_match_one_call_away_from_the_seams() -> None:
    """The U-Net on 64-px tiles (its three output maps blended) against one call on the whole
    image: the same estimate up to the seams' small differences."""
    from sagd_core.restore.methods.band_read import default_reader, read

    _, y = scene(seed=14)
    image = (2.0 * y - 1.0)[None]
    request = RestoreRequest(band=NOISE_BAND)
    whole = read(default_reader(), image, request, [0.26], tile=1024, overlap=32)
    tiled = read(default_reader(), image, request, [0.26], tile=64, overlap=16)
    assert tiled.shape == whole.shape == image.shape
    change = float(np.abs(whole - image).mean())
    assert float(np.abs(tiled - whole).mean()) < 0.1 * change


def test_a_band_without_measurable_noise_gets_the_classical_tier_and_a_warning() -> None:
    clean, _ = scene(seed=15)
    result = restore(clean, RestoreRequest(band=NOISE_BAND, method="auto"))
    classical = restore(clean, RestoreRequest(band=NOISE_BAND, method="classical"))
    assert any("no noise measured in the band" in w for w in result.report["warnings"])
    np.testing.assert_allclose(result.unclipped, classical.unclipped, atol=1e-9)


def test_the_reader_route_refuses_requests_it_does_not_apply_to() -> None:
    from sagd_core.restore.methods.band_read import run_band_read
    from sagd_core.restore.progress import Progress

    _, y = scene(seed=16)
    with pytest.raises(ValueError, match="noise-like bands"):
        run_band_read(
            (2.0 * y - 1.0)[None, None],
            RestoreRequest(band=PERIODIC),
            Progress(2, None),
            tile=1024,
            overlap=32,
        )
