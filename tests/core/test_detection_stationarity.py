"""Detection asks whether a component is spread over the whole image: interference and noise
are, a photo's own texture is not (``sagd_core.analysis.stationarity``); bands of noise under
a scene's own power show in the median tile (``sagd_core.analysis.tile_bands``)."""

from __future__ import annotations

import numpy as np
import pytest

from sagd_core.analysis import stationarity as st
from sagd_core.analysis.analyze import analyze_image
from sagd_core.analysis.spectrum_stats import tile_powers
from sagd_core.analysis.tile_bands import tile_annuli
from sagd_core.bench import detection_real as dr
from sagd_core.bench.detection import covers


def _tiles(image: np.ndarray) -> st.TileSpectra:
    chw = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
    half = tile_powers(chw)
    assert half is not None
    return st.TileSpectra.from_half(half)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    scene = dr.scenes("train", (512,), photos=1, leaves=0)[0]  # astronaut, gray, 512²
    assert scene.name == "astronaut-gray-512"
    return scene.image


def test_participation_counts_the_tiles_that_hold_the_excess() -> None:
    assert st.participation(np.full(40, 2.5)) == pytest.approx(1.0)
    one = np.zeros(40)
    one[7] = 3.0
    assert st.participation(one) == pytest.approx(1 / 40)
    quarter = np.where(np.arange(40) % 4 == 0, 1.0, -0.5)  # negative parts count as none
    assert st.participation(quarter) == pytest.approx(0.25)
    assert st.participation(-np.ones(5)) == 0.0


def test_full_grid_restores_the_conjugate_half() -> None:
    x = np.random.default_rng(0).standard_normal((3, 16, 16))
    full = np.abs(np.fft.fft2(x)) ** 2
    half = np.abs(np.fft.rfft2(x)) ** 2
    np.testing.assert_allclose(st.full_grid(half), full, rtol=1e-10, atol=1e-9)


def _cosine(n: int, f: tuple[float, float], amplitude: float) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    return amplitude * np.cos(2 * np.pi * (f[0] * yy + f[1] * xx) + 0.3)


def test_a_peak_everywhere_spreads_and_a_local_texture_does_not(photo: np.ndarray) -> None:
    f = (0.11, 0.23)
    wave = _cosine(512, f, 0.03)
    local = np.zeros_like(wave)
    local[64:192, 300:428] = wave[64:192, 300:428] * 3.0  # a patch of texture
    everywhere = st.participation(st.peak_excess(_tiles(photo + wave), *f))
    patch = st.participation(st.peak_excess(_tiles(photo + local), *f))
    assert everywhere > 0.8
    assert patch < 0.2


def test_a_band_of_noise_everywhere_spreads_and_a_local_one_does_not(photo: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    noise = 0.03 * dr._band_field(photo.shape, 0.2, 0.3, rng)
    local = np.zeros_like(noise)
    local[:160, :160] = noise[:160, :160] * 3.0
    everywhere = st.participation(st.band_excess(_tiles(photo + noise), 0.2, 0.3))
    patch = st.participation(st.band_excess(_tiles(photo + local), 0.2, 0.3))
    assert everywhere > 0.7
    assert patch < 0.3


def test_the_median_tile_finds_a_band_of_noise_and_nothing_on_the_clean_photo(
    photo: np.ndarray,
) -> None:
    assert tile_annuli(_tiles(photo), 3.0) == []
    noise = 0.03 * dr._band_field(photo.shape, 0.1, 0.2, np.random.default_rng(4))
    found = tile_annuli(_tiles(photo + noise), 3.0)
    truth = {"kind": "band_noise", "low": 0.1, "high": 0.2}
    assert found and covers(found[0].region, truth, 1 / 512)


def test_a_photos_local_texture_is_no_interference(photo: np.ndarray) -> None:
    """A periodic texture in one part of the photo (a fabric, a grille: a Gaussian envelope
    of σ = 80 px) stands out as a narrow peak in the whole image's spectrum (the detector
    before the spread check reported a notch) but not in most tiles: no notch. The same
    frequency spread weakly over the whole image is interference: one notch there."""
    f = (0.17, -0.09)
    wave = _cosine(512, f, 1.0)
    yy, xx = np.mgrid[:512, :512]
    envelope = np.exp(-((yy - 200) ** 2 + (xx - 300) ** 2) / (2 * 80.0**2))
    textured = analyze_image(np.clip(photo + 0.1 * envelope * wave, 0.0, 1.0)).regions
    assert not [r for r in textured if r.region["kind"] == "notch"]
    interfered = [r.region for r in analyze_image(np.clip(photo + 0.04 * wave, 0.0, 1.0)).regions]
    truth = {"kind": "periodic", "frequencies": [f]}
    assert interfered and all(covers(r, truth, 1 / 512) for r in interfered)


@pytest.mark.parametrize("index", [12, 25, 31])
def test_low_frequency_bands_under_photo_content_are_found(index: int) -> None:
    """Train-split draws of the real-size benchmark (seed 0) whose band of noise lies 5–10 dB
    under the photo's own power at low frequencies: the whole-image and floor profiles found
    nothing (the detector before the tile search), the median tile finds the band."""
    scene = dr.scenes("train", (256, 512))[index]
    kind = dr.KINDS.index("band_noise")
    y, truth = dr.corrupt(scene, "band_noise", np.random.default_rng([0, index, kind, 0]))
    assert truth is not None and truth["low"] < 0.1
    regions = [r.region for r in analyze_image(y).regions]
    assert any(covers(r, truth, 1 / scene.size) for r in regions)
