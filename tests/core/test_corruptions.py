"""Synthetic corruptions: spectra inside the stated band, unit variance, stripe geometry,
determinism, validation and JSON round trips (DESIGN.md §1, §6)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sagd_core.data import (
    BandNoise,
    Corruption,
    OrientedStripes,
    PeriodicStripes,
    apply_corruption,
    corruption_band_spec,
    parse_corruption,
    sample_corruption,
)
from sagd_core.data.corruptions import CorruptionError
from sagd_core.spectral import band_mask, parse_band_spec


def power_full(noise: np.ndarray) -> np.ndarray:
    """Mean power spectrum over images and channels on the full unshifted grid."""
    return (np.abs(np.fft.fft2(noise, norm="ortho")) ** 2).mean(axis=(0, 1))


def outside_fraction(noise: np.ndarray, mask_full: np.ndarray) -> float:
    power = power_full(noise)
    return float((power * (mask_full == 0)).sum() / power.sum())


EXAMPLES: list[Corruption] = [
    BandNoise(low=0.1, high=0.2, gamma=1.0),
    BandNoise(low=0.3, high=0.4, gamma=0.5, radius="normalized"),
    OrientedStripes(angle_deg=30, low=0.05, high=0.45, amplitude=0.4),
    PeriodicStripes(frequencies=((4 / 32, -6 / 32), (0.5, 0.25)), amplitude=0.2),
]


@pytest.mark.parametrize("corruption", EXAMPLES, ids=lambda c: f"{c.kind}")
def test_energy_lies_inside_the_published_band_spec(corruption: Corruption) -> None:
    spec = parse_band_spec(corruption_band_spec(corruption))  # the dict is a valid BandSpec
    noise = sample_corruption((16, 2, 32, 32), corruption, seed=3)
    mask = band_mask(spec, 32, 32, half=False)
    assert noise.dtype == np.float64
    assert outside_fraction(noise, mask) < 1e-20


@pytest.mark.parametrize("shape", [(32, 32), (24, 40), (17, 31)])
def test_band_noise_is_only_in_the_half_open_annulus(shape: tuple[int, int]) -> None:
    h, w = shape
    low, high = 0.125, 0.25
    noise = sample_corruption((64, 1, h, w), BandNoise(low=low, high=high), seed=0)
    r = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)
    inside = (r >= low) & (r < high)
    assert outside_fraction(noise, inside.astype(float)) < 1e-20
    # Every bin of the band gets energy (no bin of [low, high) is silently dropped).
    assert (power_full(noise)[inside] > 1e-3).all()


@pytest.mark.parametrize(
    "corruption",
    [BandNoise(low=0.1, high=0.2), BandNoise(low=0.5, high=0.9, radius="normalized")],
    ids=["absolute", "normalized"],
)
def test_band_noise_has_unit_pixel_variance(corruption: BandNoise) -> None:
    noise = sample_corruption((800, 1, 32, 32), corruption, seed=1)
    # ~10^5 effective degrees of freedom: the sampling error of the variance is below 1 %.
    assert noise.var() == pytest.approx(1.0, abs=0.03)
    assert abs(noise.mean()) < 0.01


def test_gamma_scales_the_noise_std() -> None:
    unit = sample_corruption((4, 1, 16, 16), BandNoise(low=0.1, high=0.3), seed=5)
    scaled = sample_corruption((4, 1, 16, 16), BandNoise(low=0.1, high=0.3, gamma=0.25), seed=5)
    np.testing.assert_allclose(scaled, 0.25 * unit, rtol=1e-12, atol=1e-15)


def test_apply_adds_the_noise_and_does_not_clip() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, size=(6, 3, 16, 16)).astype(np.float32)
    corruption = BandNoise(low=0.2, high=0.4, gamma=2.0)
    y = apply_corruption(x, corruption, seed=9)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y - x, sample_corruption(x.shape, corruption, seed=9), atol=1e-5)
    assert y.max() > 1.0 and y.min() < -1.0  # P1 does not clip


def test_periodic_stripes_put_energy_on_the_given_bins() -> None:
    h, w = 32, 32
    ky, kx = 4, -6  # on-grid: 4/32 and -6/32 cycles/pixel
    corruption = PeriodicStripes(frequencies=((ky / h, kx / w),), amplitude=0.3)
    noise = sample_corruption((8, 1, h, w), corruption, seed=0)
    power = power_full(noise)
    elsewhere = power.copy()
    elsewhere[ky % h, kx % w] = elsewhere[-ky % h, -kx % w] = 0.0
    assert elsewhere.sum() / power.sum() < 1e-20
    # A cosine of peak a has pixel variance a²/2.
    np.testing.assert_allclose(noise.var(axis=(2, 3)), 0.3**2 / 2, rtol=1e-10)


def test_periodic_phases_are_random_per_image_and_channel() -> None:
    corruption = PeriodicStripes(frequencies=((0.125, 0.0),), amplitude=1.0)
    noise = sample_corruption((400, 2, 8, 8), corruption, seed=0)
    first_pixels = noise[:, :, 0, 0]
    assert not np.allclose(noise[0, 0], noise[1, 0])
    assert not np.allclose(noise[0, 0], noise[0, 1])
    # cos of a uniform phase: mean 0, variance 1/2.
    assert abs(first_pixels.mean()) < 0.1
    assert first_pixels.var() == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize(("angle", "constant_axis"), [(0, 2), (90, 3), (180, 2), (-90, 3)])
def test_oriented_stripes_follow_the_angle_convention(angle: float, constant_axis: int) -> None:
    """angle 0 = spectral line on the fx axis = vertical stripes (constant down each column)."""
    corruption = OrientedStripes(angle_deg=angle, low=0.05, high=0.5, amplitude=1.0)
    noise = sample_corruption((3, 1, 32, 32), corruption, seed=2)
    spread = noise.std(axis=constant_axis)
    assert spread.max() < 1e-12
    assert noise.std() > 0.5


def test_oriented_stripes_at_an_angle_vary_along_that_direction() -> None:
    """θ = 45° (from +fx towards +fy, y = row index): constant along the anti-diagonal x + y."""
    corruption = OrientedStripes(angle_deg=45, tolerance_deg=1, low=0.05, high=0.5, amplitude=1)
    noise = sample_corruption((2, 1, 32, 32), corruption, seed=4)[0, 0]
    along_stripe = np.array([noise[y, (5 - y) % 32] for y in range(32)])  # x + y ≡ 5
    across = np.array([noise[y, (5 + y) % 32] for y in range(32)])  # x − y ≡ 5
    assert along_stripe.std() < 1e-12
    assert across.std() > 0.3


def test_deterministic_given_seed_and_independent_of_batching() -> None:
    x = np.zeros((5, 1, 16, 16), dtype=np.float32)
    for corruption in EXAMPLES:
        a = apply_corruption(x, corruption, seed=11)
        np.testing.assert_array_equal(a, apply_corruption(x, corruption, seed=11))
        np.testing.assert_array_equal(a[:2], apply_corruption(x[:2], corruption, seed=11))
        assert not np.array_equal(a, apply_corruption(x, corruption, seed=12))


@pytest.mark.parametrize("corruption", EXAMPLES, ids=lambda c: c.kind)
def test_json_round_trip(corruption: Corruption) -> None:
    text = corruption.model_dump_json()
    assert parse_corruption(text) == corruption
    assert parse_corruption(corruption.model_dump(mode="json")) == corruption
    with pytest.raises(ValidationError, match="frozen"):
        corruption.kind = "band_noise"  # frozen


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kind": "band_noise", "low": 0.3, "high": 0.2}, "low < high"),
        ({"kind": "band_noise", "low": 0.1, "high": 0.2, "gamma": -1}, "gamma"),
        ({"kind": "band_noise", "low": 0.8, "high": 0.9}, "beyond the largest radius"),
        ({"kind": "band_noise", "low": "nan", "high": 0.2}, "low"),
        ({"kind": "periodic", "frequencies": [[0, 0]], "amplitude": 1}, "DC"),
        ({"kind": "periodic", "frequencies": [[0.7, 0]], "amplitude": 1}, "[-0.5, 0.5]"),
        ({"kind": "periodic", "frequencies": [], "amplitude": 1}, "frequencies"),
        ({"kind": "oriented", "angle_deg": 10, "low": 0, "high": 0.3}, "amplitude"),
        ({"kind": "band_noise", "low": 0.1, "high": 0.2, "extra": 1}, "extra"),
        ({"kind": "blur", "sigma": 1}, "kind"),
        ([1, 2], "JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_invalid_corruptions_give_readable_errors(data: object, fragment: str) -> None:
    with pytest.raises(CorruptionError) as info:
        parse_corruption(data)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_band_without_bins_at_this_size_is_refused() -> None:
    corruption = BandNoise(low=0.30, high=0.31)
    with pytest.raises(CorruptionError, match="holds no frequency bin at 8×8"):
        sample_corruption((1, 1, 8, 8), corruption, seed=0)


def test_bad_images_are_refused() -> None:
    corruption = BandNoise(low=0.1, high=0.2)
    with pytest.raises(CorruptionError, match="N, C, H, W"):
        apply_corruption(np.zeros((16, 16), np.float32), corruption, seed=0)
    with pytest.raises(CorruptionError, match="non-finite"):
        apply_corruption(np.full((1, 1, 8, 8), np.nan, np.float32), corruption, seed=0)
    with pytest.raises(CorruptionError, match="seed"):
        apply_corruption(np.zeros((1, 1, 8, 8), np.float32), corruption, seed=-1)


def test_band_spec_matches_the_corruption() -> None:
    band = corruption_band_spec(BandNoise(low=0.1, high=0.2, radius="normalized"))
    assert band["regions"] == [{"kind": "annulus", "low": 0.1, "high": 0.2}]
    assert band["radius"] == "normalized" and band["units"] == "cycles/pixel"
    wedge = corruption_band_spec(
        OrientedStripes(angle_deg=30, tolerance_deg=4, low=0.1, high=0.4, amplitude=1)
    )["regions"][0]
    assert wedge == {"kind": "wedge", "angle_deg": 30, "tolerance_deg": 4, "low": 0.1, "high": 0.4}
    notches = corruption_band_spec(
        PeriodicStripes(frequencies=((0.1, 0.2),), amplitude=1, notch_radius=0.03)
    )["regions"]
    assert notches == [{"kind": "notch", "fy": 0.1, "fx": 0.2, "radius": 0.03}]
