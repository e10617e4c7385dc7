"""The classical tier's noise path: patch-DCT shrinkage with per-coefficient coloured-noise
variances, the opponent colour transform, the SURE blend with the Fourier-tile Wiener filter,
and the benchmark's train/test split."""

from __future__ import annotations

import numpy as np
import pytest

from sagd_core.restore.methods.classical.dct_shrinkage import dct_denoise
from sagd_core.restore.methods.classical.opponent import OPPONENT, from_opponent, to_opponent
from sagd_core.restore.methods.classical.patch_noise import (
    coefficient_variances,
    dct2_basis,
    dct_matrix,
)
from sagd_core.restore.methods.classical.sure_blend import (
    blend_weights,
    divergence,
    noise_probe,
)
from sagd_core.restore.methods.classical.wiener import (
    estimate_noise,
    fourier_wiener,
    wiener_denoise,
)
from sagd_core.spectral.bands import Annulus, BandSpec
from sagd_core.spectral.fft import irfft2, rfft2
from sagd_core.spectral.grid import full_from_half
from sagd_core.spectral.masks import band_mask


def annulus_psd(n: int, low: float, high: float, level: float) -> np.ndarray:
    r = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    return np.where((r >= low) & (r < high), level, 0.0)


def coloured_noise(psd: np.ndarray, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """Stationary Gaussian noise ``(C, H, W)`` of power spectrum ``psd`` (orthonormal)."""
    white = rng.standard_normal((channels, *psd.shape))
    return np.fft.ifft2(np.fft.fft2(white) * np.sqrt(psd)).real


def photo(n: int = 128, channels: int = 1) -> np.ndarray:
    """A training-split photo crop in model range ``(C, n, n)``."""
    from sagd_core.data.builtin import NATURAL_TRAIN_IMAGES, _photo

    name = "coffee" if channels == 3 else "camera"
    assert name in NATURAL_TRAIN_IMAGES  # never a test-split photo
    chw = _photo(name, channels).astype(np.float64)
    h, w = chw.shape[1:]
    crop = chw[:, (h - n) // 2 : (h + n) // 2, (w - n) // 2 : (w + n) // 2]
    return 0.7 * crop  # model range, away from the clip limits


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def test_the_dct_basis_is_orthonormal() -> None:
    assert np.allclose(dct_matrix(8) @ dct_matrix(8).T, np.eye(8))
    basis = dct2_basis(8)
    assert np.allclose(basis @ basis.T, np.eye(64))
    assert np.allclose(basis[0], 1.0 / 8.0)  # the DC


def test_white_noise_gives_every_coefficient_its_variance() -> None:
    var = coefficient_variances(np.full((2, 32, 32), 0.3), dct2_basis(8))
    assert var.shape == (2, 64)
    assert np.allclose(var, 0.3)


def test_coefficient_variances_match_a_monte_carlo_estimate() -> None:
    """Band-limited noise: the variance of every DCT coefficient of 8×8 patches matches the
    formula Σ_f N(f)|B_k(f)|², and it is far from flat (the band picks basis functions)."""
    n = 64
    psd = annulus_psd(n, 0.15, 0.30, 2.0)
    basis = dct2_basis(8)
    expected = coefficient_variances(psd[None], basis)[0]
    rng = np.random.default_rng(0)
    coefs = []
    for _ in range(60):
        noise = coloured_noise(psd, rng)[0]
        patches = np.lib.stride_tricks.sliding_window_view(noise, (8, 8))[::8, ::8]
        coefs.append(patches.reshape(-1, 64) @ basis.T)
    empirical = np.concatenate(coefs).var(axis=0)  # 3840 patches
    assert np.abs(empirical - expected).max() < 0.12 * expected.max()
    assert expected.min() < 0.001 * expected.max()  # the highest frequencies hold no band noise
    # through the Fourier-domain formula as well
    padded = np.zeros((64, n, n))
    padded[:, :8, :8] = basis.reshape(64, 8, 8)
    via_fft = (np.abs(np.fft.fft2(padded, norm="ortho")) ** 2 * psd).sum(axis=(1, 2))
    assert np.allclose(via_fft, expected)


def test_the_opponent_transform_is_orthonormal_and_keeps_iid_noise_iid() -> None:
    assert np.allclose(OPPONENT @ OPPONENT.T, np.eye(3))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 16, 16))
    assert np.allclose(from_opponent(to_opponent(x)), x)
    assert np.isclose(np.sum(to_opponent(x) ** 2), np.sum(x**2))
    noise = 0.2 * rng.standard_normal((3, 256, 256))
    cov = np.cov(to_opponent(noise).reshape(3, -1))
    assert np.allclose(cov, 0.04 * np.eye(3), atol=0.003)
    gray = rng.standard_normal((1, 8, 8))
    assert to_opponent(gray) is gray and from_opponent(gray) is gray


@pytest.mark.parametrize("channels", [1, 3])
def test_patch_shrinkage_beats_the_fourier_wiener_filter_and_the_notch(channels: int) -> None:
    """Band-limited noise on a photo: the new estimator (and the tier's full noise path) is
    closer to the truth than the previous Fourier-domain Wiener filter and than the notch."""
    x = photo(channels=channels)
    n = x.shape[-1]
    psd = annulus_psd(n, 0.15, 0.30, 0.02 / 0.212)  # pixel std ≈ 0.14
    y = x + coloured_noise(psd, np.random.default_rng(2), channels)
    mask = band_mask(BandSpec(regions=[Annulus(low=0.15, high=0.30)]), n, n)
    spectrum = rfft2(y)
    power = spectrum.real**2 + spectrum.imag**2
    noise, _ = estimate_noise(power, {0: mask}, mask, 0.0, n)

    def in_band(estimate: np.ndarray) -> np.ndarray:  # the trusted bins kept
        return irfft2((1 - mask) * spectrum + mask * rfft2(estimate), n, n)

    wiener = in_band(fourier_wiener(y, spectrum, power, noise))
    notch = irfft2((1 - mask) * spectrum, n, n)
    patches = dct_denoise(to_opponent(y), np.repeat(full_from_half(noise, n)[:1], channels, 0))
    ours = in_band(from_opponent(patches.estimate))
    full, estimate = wiener_denoise(y, {0: mask}, mask, 0.0)
    assert mse(ours, x) < 0.75 * mse(wiener, x)
    assert mse(full, x) < 0.9 * mse(wiener, x)
    assert mse(full, x) < 0.5 * mse(notch, x)
    assert len(estimate.band_std[0]) == channels
    # only the band changes when no broadband noise is declared
    assert np.allclose((1 - mask) * rfft2(full), (1 - mask) * spectrum)


def test_declared_white_noise_is_removed_better_than_by_the_fourier_wiener_filter() -> None:
    x = photo(channels=3)
    n = x.shape[-1]
    y = x + 0.04 * np.random.default_rng(3).standard_normal(x.shape)
    spectrum = rfft2(y)
    power = spectrum.real**2 + spectrum.imag**2
    noise, _ = estimate_noise(power, {}, np.zeros_like(power[0]), 0.04**2, n)
    out, _ = wiener_denoise(y, {}, np.zeros_like(power[0]), 0.04)
    assert mse(out, x) < 0.9 * mse(fourier_wiener(y, spectrum, power, noise), x)
    assert mse(out, x) < 0.5 * mse(y, x)


def test_declared_white_noise_does_not_lower_the_band_level() -> None:
    """The trusted rings that give the signal spectrum hold the declared white noise too, so
    the band's level is its excess over them alone: band noise of a known level plus white
    noise of a known σ on a smooth image (no signal in the band) gives the level back, not the
    level less σ² (12.5 % low here, 14.5 % with this sample)."""
    n = 256
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[:n, :n] / n
    smooth = 0.3 * np.sin(2 * np.pi * yy) * np.cos(2 * np.pi * xx)
    level, white = 0.02, 0.05  # per bin (orthonormal): white noise puts σ² = 0.0025 in every bin
    y = smooth[None] + coloured_noise(annulus_psd(n, 0.15, 0.30, level), rng)
    y = y + white * rng.standard_normal((1, n, n))
    mask = band_mask(BandSpec(regions=[Annulus(low=0.15, high=0.30)]), n, n)
    spectrum = rfft2(y)
    power = spectrum.real**2 + spectrum.imag**2
    noise, estimate = estimate_noise(power, {0: mask}, mask, white**2, n)
    assert estimate.levels[0][0] == pytest.approx(level, rel=0.04)  # 0.855 × level before
    assert noise[0][mask > 0] == pytest.approx(white**2 + estimate.levels[0][0])
    assert np.allclose(noise[0][mask == 0], white**2)


def test_flat_images_stay_flat() -> None:
    n = 64
    flat = np.full((1, n, n), 0.3)
    mask = band_mask(BandSpec(regions=[Annulus(low=0.15, high=0.30)]), n, n)
    out, _ = wiener_denoise(flat, {0: mask}, mask, 0.0)  # no noise found: returned as it is
    assert np.allclose(out, flat)
    noisy = flat + coloured_noise(annulus_psd(n, 0.15, 0.30, 0.05), np.random.default_rng(4))
    out, _ = wiener_denoise(noisy, {0: mask}, mask, 0.0)
    assert mse(out, flat) < 0.1 * mse(noisy, flat)
    zeros = np.zeros((3, 32, 32))
    assert np.allclose(wiener_denoise(zeros, {}, np.zeros((32, 17)), 0.1)[0], 0.0)


@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 7, 20), (1, 8, 8), (3, 12, 40), (1, 63, 70)])
def test_small_and_odd_images_work(shape: tuple[int, int, int]) -> None:
    c, h, w = shape
    rng = np.random.default_rng(5)
    y = 0.3 * rng.standard_normal(shape)
    mask = band_mask(BandSpec(regions=[Annulus(low=0.2, high=0.35)]), h, w)
    for white in (0.0, 0.1):
        out, estimate = wiener_denoise(y, {0: mask}, mask, white)
        assert out.shape == shape and np.all(np.isfinite(out))
        assert len(estimate.levels[0]) == c


def test_dct_denoise_handles_patches_that_do_not_tile_the_image() -> None:
    """Sides that are no multiple of the strides: every pixel is covered, noise-free channels
    are returned exactly."""
    rng = np.random.default_rng(6)
    y = rng.standard_normal((2, 29, 41))
    psd = np.zeros((2, 29, 41))
    psd[0] = 0.5
    out = dct_denoise(y, psd)
    assert np.all(np.isfinite(out.estimate))
    assert np.array_equal(out.estimate[1], y[1])
    assert mse(out.estimate[0], 0.0) < mse(y[0], 0.0)


@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 70, 97), (2, 81, 64)])
def test_the_tiles_match_a_tile_by_tile_overlap_add(shape: tuple[int, int, int]) -> None:
    """The batched local stage (tiles transformed in batches, one overlap-add per block
    position, both pilots sharing the tiles of y) against a plain loop over the tiles."""
    from scipy import fft

    from sagd_core.restore.methods.classical.wiener import (
        STRIDE,
        TILE,
        _window,
        local_wieners,
        tile_noise_power,
    )

    c, h, w = shape
    rng = np.random.default_rng(12)
    y = rng.standard_normal(shape)
    pilots = [0.5 * y + 0.1 * rng.standard_normal(shape), rng.standard_normal(shape)]
    psd = np.repeat(annulus_psd(64, 0.1, 0.3, 0.5)[None], c, 0) + 0.01
    tile_noise = tile_noise_power(psd, _window(TILE))
    t, s, pad = TILE, STRIDE, TILE // 2
    win = np.outer(_window(t), _window(t))
    noise = tile_noise[:, :, : t // 2 + 1]
    widths = ((0, 0), (pad, pad + t), (pad, pad + t))
    for pilot, got in zip(pilots, local_wieners(y, pilots, tile_noise), strict=True):
        py, pp = np.pad(y, widths, mode="reflect"), np.pad(pilot, widths, mode="reflect")
        acc, norm = np.zeros_like(py), np.zeros(py.shape[1:])
        for y0 in range(0, h + pad + 1, s):
            for x0 in range(0, w + pad + 1, s):
                tile = (slice(None), slice(y0, y0 + t), slice(x0, x0 + t))
                power = np.abs(fft.rfft2(pp[tile] * win)) ** 2
                gain = power / (power + noise)
                acc[tile] += fft.irfft2(fft.rfft2(py[tile] * win) * gain, s=(t, t)) * win
                norm[tile[1:]] += win**2
        expected = acc[:, pad : pad + h, pad : pad + w] / norm[pad : pad + h, pad : pad + w]
        assert np.allclose(got, expected, atol=1e-5)


def test_the_half_grid_pieces_match_their_full_grid_forms() -> None:
    """The pilot's smoothing on the half grid and the autocovariance from the half grid agree
    with the full-grid computations (even and odd widths)."""
    from scipy import ndimage

    from sagd_core.restore.methods.classical.patch_noise import autocovariance
    from sagd_core.restore.methods.classical.wiener import PILOT_SMOOTHING, _smooth_half

    rng = np.random.default_rng(13)
    for h, w in [(16, 16), (15, 9), (40, 7), (6, 3)]:
        full = rng.standard_normal((2, h, w))
        full = full + full[:, (-np.arange(h)) % h][:, :, (-np.arange(w)) % w]  # P(−f) = P(f)
        half = full[..., : w // 2 + 1]
        assert np.allclose(full_from_half(half, w), full)
        sigma = (0, PILOT_SMOOTHING, PILOT_SMOOTHING)
        smoothed = ndimage.gaussian_filter(full, sigma=sigma, mode="wrap")
        assert np.allclose(_smooth_half(half, w), smoothed[..., : w // 2 + 1])
        assert np.allclose(autocovariance(half, h, w), np.fft.ifft2(full).real)


def test_the_perturbed_run_on_the_window_and_its_margin_is_the_run_on_the_whole_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SURE divergence's perturbed run covers the risk window and a margin as wide as an
    estimate reaches: the result is that of a perturbed run on the whole image (to rounding)."""
    from sagd_core.restore.methods.classical import wiener

    x = photo(n=384)
    n = x.shape[-1]
    y = x + coloured_noise(annulus_psd(n, 0.15, 0.30, 0.05), np.random.default_rng(14))
    mask = band_mask(BandSpec(regions=[Annulus(low=0.15, high=0.30)]), n, n)
    assert wiener._sure_window(n)[2] != slice(0, n)  # a crop at this size
    for white in (0.0, 0.05):
        cropped, _ = wiener_denoise(y, {0: mask}, mask, white)
        with monkeypatch.context() as m:
            m.setattr(wiener, "_MARGIN", 10 * n)  # the whole image
            whole, _ = wiener_denoise(y, {0: mask}, mask, white)
        assert np.allclose(cropped, whole, atol=1e-6)


def test_the_sure_blend_picks_the_better_estimator() -> None:
    """Linear estimators (the identity and a blur): the SURE weights, from the noisy image and a
    noise probe only, are close to the oracle's, and so is the blend's error."""
    from scipy import ndimage

    x = photo()
    n = x.shape[-1]
    psd = np.full((1, n, n // 2 + 1), 0.01)
    y = x + 0.1 * np.random.default_rng(7).standard_normal(x.shape)
    probe = noise_probe(psd, n, n)
    assert probe.std() == pytest.approx(0.1, rel=0.05)

    def blur(v: np.ndarray, sigma: float = 1.0) -> np.ndarray:
        return ndimage.gaussian_filter(v, sigma=(0, sigma, sigma), mode="wrap")

    estimates = np.stack([y, blur(y)])
    divs = np.stack([divergence(probe, probe), divergence(probe, blur(probe))])
    weights = blend_weights(y, estimates, divs)
    assert weights.shape == (2, 1) and weights.sum() == pytest.approx(1.0)
    diff = blur(y) - y
    oracle = float(np.sum((x - y) * diff) / np.sum(diff * diff))
    assert weights[1, 0] == pytest.approx(oracle, abs=0.05)
    blended = np.einsum("kc,kchw->chw", weights, estimates)
    assert mse(blended, x) < 1.01 * mse(y + oracle * diff, x)
    # a clean estimate among noisy ones takes all the weight
    three = np.stack([y, x, blur(y, 2.0)])
    divs3 = np.stack([divs[0], np.zeros(1), divergence(probe, blur(probe, 2.0))])
    assert blend_weights(y, three, divs3)[1, 0] > 0.95
    # a heavy blur and the identity both lose to a mild one: the mild one gets most weight
    three = np.stack([y, blur(y, 1.0), blur(y, 4.0)])
    divs3 = np.stack([divs[0], divs[1], divergence(probe, blur(probe, 4.0))])
    weights = blend_weights(y, three, divs3)
    assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0)
    assert int(np.argmax(weights[:, 0])) == 1


def test_the_real_benchmark_tunes_on_the_train_split() -> None:
    from sagd_core.bench import real
    from sagd_core.data.builtin import NATURAL_TEST_IMAGES

    test = {s.name for s in real.scenes((32,), quick=True)}
    train = {s.name for s in real.scenes((32,), quick=True, split="train")}
    assert not test & train
    assert all(not any(t in s for t in NATURAL_TEST_IMAGES) for s in train)
    assert {s.split("-")[0] for s in train} >= {"leaves101"}
    with pytest.raises(ValueError, match="split"):
        real.scenes((32,), split="validation")  # type: ignore[arg-type]


def test_the_real_benchmark_cli_takes_a_split() -> None:
    import argparse

    from sagd_core.cli import bench_real

    parser = argparse.ArgumentParser()
    bench_real._arguments(parser)
    assert parser.parse_args([]).split == "test"
    assert parser.parse_args(["--split", "train"]).split == "train"
    with pytest.raises(SystemExit):
        parser.parse_args(["--split", "all"])


def test_untrusted_bins_without_a_noise_model_are_kept_out_of_the_estimators() -> None:
    """The guard's situation: strong noise in a band that is untrusted but not modelled (A) next
    to the modelled region (B). A is kept out (returned as it is without broadband noise), so
    it does not leak into B's estimate through the patches' coarse frequency resolution."""
    x = photo()
    n = x.shape[-1]
    inner = band_mask(BandSpec(regions=[Annulus(low=0.15, high=0.30)]), n, n)
    shell = band_mask(BandSpec(regions=[Annulus(low=0.30, high=0.36)]), n, n)
    rng = np.random.default_rng(8)
    noise_a = coloured_noise(annulus_psd(n, 0.15, 0.30, 0.1), rng)
    noise_b = coloured_noise(annulus_psd(n, 0.30, 0.36, 0.02), rng)
    y = x + noise_a + noise_b
    kept_out, _ = wiener_denoise(y, {0: shell}, np.maximum(inner, shell), 0.0)
    as_signal, _ = wiener_denoise(y, {0: shell}, shell, 0.0)
    assert np.allclose(inner * rfft2(kept_out), inner * rfft2(y))

    def shell_error(v: np.ndarray) -> float:
        return float(np.sum(np.abs(shell * (rfft2(v) - rfft2(x))) ** 2))

    assert shell_error(kept_out) < 0.8 * shell_error(as_signal)
    assert shell_error(kept_out) < 0.5 * shell_error(y)
