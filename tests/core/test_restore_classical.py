"""The classical tier (method="classical"): each region kind removed by its estimator, better
than the notch on the corruption it fits, trusted bins kept where the estimator allows, the
report per region, and no torch on its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sagd_core.restore.engine import restore
from sagd_core.restore.methods.classical.kinds import plan_region
from sagd_core.restore.methods.classical.wiener import _window, tile_noise_power
from sagd_core.restore.request import RestoreRequest
from sagd_core.spectral.bands import Annulus, BandSpec, Box, Notch, Wedge

ROOT = Path(__file__).resolve().parents[2]
N = 128


def scene(seed: int = 0, channels: int = 1, n: int = N) -> np.ndarray:
    """A smooth random scene with edges: a power-law field plus a few flat disks, in
    [0.15, 0.85] so that added corruption never clips."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / n) ** 1.5
    out = []
    for _ in range(channels):
        field = np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((n, n)))).real
        yy, xx = np.mgrid[:n, :n]
        for _ in range(6):
            cy, cx = (float(v) for v in rng.uniform(0, n, 2))
            r = float(rng.uniform(n / 16, n / 5))
            field += np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r**2, rng.normal(0, 2), 0.0) * (
                field.std()
            )
        field = (field - field.min()) / np.ptp(field)
        out.append(0.15 + 0.7 * field)
    img = np.stack(out, axis=-1)
    return img[..., 0] if channels == 1 else img


def training_photo(name: str = "camera", n: int = N, channels: int = 1) -> np.ndarray:
    """A centre crop of a ``natural`` training-split photo in [0.15, 0.85], (H, W) or (H, W, 3)."""
    from sagd_core.data.builtin import NATURAL_TRAIN_IMAGES, _photo

    assert name in NATURAL_TRAIN_IMAGES  # never a test-split or held-out photo
    chw = _photo(name, channels)
    h, w = chw.shape[1:]
    crop = chw[:, (h - n) // 2 : (h + n) // 2, (w - n) // 2 : (w + n) // 2].astype(np.float64)
    unit = 0.15 + 0.7 * (np.moveaxis(crop, 0, -1) + 1.0) / 2.0
    return unit[..., 0] if channels == 1 else unit


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def run(y: np.ndarray, spec: BandSpec, method: str, **kw: object) -> np.ndarray:
    return restore(y, RestoreRequest(band=spec, method=method, **kw)).unclipped  # type: ignore[arg-type]


OFF_GRID = [(0.1234, 0.0567), (-0.0831, 0.2113)]


def periodic(x: np.ndarray) -> tuple[np.ndarray, BandSpec]:
    yy, xx = np.mgrid[: x.shape[0], : x.shape[1]]
    c = sum(
        0.08 * np.cos(2 * np.pi * (a * yy + b * xx) + 0.7 * i) for i, (a, b) in enumerate(OFF_GRID)
    )
    c = c if x.ndim == 2 else c[..., None]
    spec = BandSpec(regions=[Notch(fy=a, fx=b, radius=0.02) for a, b in OFF_GRID])
    return x + c, spec


@pytest.mark.parametrize("channels", [1, 3])
def test_off_grid_sinusoids_are_fitted_and_subtracted(channels: int) -> None:
    x = scene(1, channels)
    y, spec = periodic(x)
    result = restore(y, RestoreRequest(band=spec, method="classical"))
    notch = run(y, spec, "notch")
    assert psnr(result.unclipped, x) > psnr(notch, x) + 15.0
    found = result.report["details"]["regions"]
    for (fy, fx), entry in zip(OFF_GRID, found, strict=True):
        comp = entry["components"][0]
        # the conjugate pair is the same sinusoid
        err = min(
            np.hypot(comp["fy"] - fy, comp["fx"] - fx), np.hypot(comp["fy"] + fy, comp["fx"] + fx)
        )
        assert err < 2e-4
        assert comp["amplitude"] == pytest.approx([0.16] * channels, rel=0.03)  # model range
    assert [b["action"] for b in result.report["bands"]] == ["subtracted", "subtracted"]


@pytest.mark.parametrize(("angle", "axis"), [(0.0, 0), (90.0, 1)])
def test_stripes_are_removed_and_the_rest_of_the_spectrum_kept(angle: float, axis: int) -> None:
    n = 256  # at 128 px the cameraman's tripod (long vertical edges) looks like stripes
    x = training_photo("camera", n)
    rng = np.random.default_rng(5)
    profile = rng.normal(0, 0.04, n)
    stripes = np.broadcast_to(profile[None, :] if axis == 0 else profile[:, None], x.shape)
    y = x + stripes
    spec = BandSpec(regions=[Wedge(angle_deg=angle, tolerance_deg=1.0, low=1.5 / n, high=1.0)])
    result = restore(y, RestoreRequest(band=spec, method="classical"))
    out = result.unclipped
    assert psnr(out, x) > psnr(run(y, spec, "notch"), x) + 4.0
    assert psnr(out, x) > psnr(y, x) + 4.0
    assert result.report["out_of_band_residual"] < 1e-10  # only the wedge changed
    assert result.report["details"]["regions"][0]["estimator"] == "stripes"


def band_noise(
    shape: tuple[int, ...], low: float, high: float, std: float, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(shape)
    r = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :])
    keep = (r >= low) & (r < high)
    out = np.fft.ifft2(
        np.fft.fft2(n, axes=(0, 1)) * (keep if n.ndim == 2 else keep[..., None]), axes=(0, 1)
    ).real
    return out * std / out.std()


@pytest.mark.parametrize("channels", [1, 3])
def test_band_limited_noise_is_wiener_filtered_not_deleted(channels: int) -> None:
    x = training_photo("coffee", channels=channels)
    y = x + band_noise(x.shape, 0.15, 0.30, 0.06, seed=4)
    spec = BandSpec(regions=[Annulus(low=0.15, high=0.30)])
    result = restore(y, RestoreRequest(band=spec, method="classical"))
    assert psnr(result.unclipped, x) > psnr(run(y, spec, "notch"), x) + 1.0
    assert result.report["out_of_band_residual"] < 1e-10
    entry = result.report["details"]["regions"][0]
    # 0.06 in [0, 1] is 0.12 in model range
    assert entry["noise_std"] == pytest.approx([0.12] * channels, rel=0.15)


def test_declared_broadband_noise_is_denoised_after_the_band() -> None:
    x = scene(4)
    y, spec = periodic(x)
    y = y + np.random.default_rng(6).normal(0, 0.02, x.shape)
    out = run(y, spec, "classical", input_noise_std=0.04)
    assert psnr(out, x) > psnr(run(y, spec, "notch"), x) + 2.0
    assert psnr(out, x) > psnr(run(y, spec, "classical"), x) + 1.0


def test_each_region_gets_the_estimator_of_its_kind() -> None:
    assert plan_region(0, Notch(fy=0.1, fx=0.1, radius=0.01)).kind == "sinusoid"
    assert plan_region(0, Wedge(angle_deg=0, tolerance_deg=2, low=0.01)).axis == "columns"
    assert plan_region(0, Wedge(angle_deg=90, tolerance_deg=2, low=0.01)).axis == "rows"
    assert plan_region(0, Wedge(angle_deg=45, tolerance_deg=2, low=0.01)).kind == "noise"
    assert plan_region(0, Wedge(angle_deg=0, tolerance_deg=30, low=0.01)).kind == "noise"
    assert plan_region(0, Annulus(low=0.1, high=0.2)).kind == "noise"
    assert plan_region(0, Box(fy=(0.1, 0.2), fx=(0.1, 0.2))).kind == "noise"
    declared = plan_region(0, Annulus(low=0.1, high=0.2, model="sinusoid"))
    assert declared.kind == "sinusoid" and "declared" in declared.reason
    odd = plan_region(0, Annulus(low=0.1, high=0.2, model="stripes"))
    assert odd.kind == "noise" and "only a wedge" in odd.reason


def test_tile_noise_power_is_exact() -> None:
    """White noise: E|fft(w·n)|² = σ² Σw² at every frequency; band-limited noise: the formula
    matches a Monte Carlo average over many tiles."""
    t = 16
    win = _window(t)
    white = tile_noise_power(np.full((1, 64, 64), 0.3), win)
    assert np.allclose(white, 0.3 * (win**2).sum() ** 2)
    rng = np.random.default_rng(0)
    r = np.hypot(np.fft.fftfreq(64)[:, None], np.fft.fftfreq(64)[None, :])
    psd = np.where((r >= 0.1) & (r < 0.25), 2.0, 0.0)
    expected = tile_noise_power(psd[None], win)[0]
    acc = np.zeros((t, t))
    trials = 400
    for _ in range(trials):
        n = np.fft.ifft2(np.fft.fft2(rng.standard_normal((64, 64))) * np.sqrt(psd)).real
        spec = np.fft.fft2(n[:t, :t] * np.outer(win, win))
        acc += np.abs(spec) ** 2 / trials
    assert np.abs(acc - expected).max() < 0.15 * expected.max()


def test_the_model_free_paths_import_no_torch() -> None:
    """notch and classical restorations and band detection run without torch (start-up)."""
    code = (
        "import sys, numpy as np;"
        "from sagd_core.restore import restore, RestoreRequest;"
        "from sagd_core.analysis.analyze import analyze_image;"
        "img = np.random.default_rng(0).random((64, 64));"
        "band = {'regions': [{'kind': 'annulus', 'low': 0.2, 'high': 0.3}]};"
        "[restore(img, RestoreRequest(band=band, method=m)) for m in ('notch', 'classical')];"
        "analyze_image(img);"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_the_probe_band_sends_a_signal_free_band_to_the_notch() -> None:
    """Band-limited noise over a band the image has no content in (a scene low-passed below
    r = 0.12, so that the probe shells next to the band are empty too): the probe band finds
    the estimator no better than deleting, so the region gets the notch, with a warning, and the
    result is the notch's."""
    smooth = scene(7)
    r = np.hypot(np.fft.fftfreq(N)[:, None], np.fft.fftfreq(N)[None, :])
    x = np.fft.ifft2(np.fft.fft2(smooth) * (r < 0.12)).real
    y = x + band_noise(x.shape, 0.15, 0.30, 0.06, seed=8)
    spec = BandSpec(regions=[Annulus(low=0.15, high=0.30)])
    result = restore(y, RestoreRequest(band=spec, method="classical"))
    entry = result.report["details"]["regions"][0]
    assert entry["probe"]["chosen"] == "notch"
    assert entry["estimator"] == "notch"
    assert result.report["bands"][0]["action"] == "omitted"
    assert any("lost to the notch" in w for w in result.report["warnings"])
    assert np.allclose(result.unclipped, run(y, spec, "notch"), atol=1e-6)


def test_the_probe_band_keeps_the_wiener_filter_where_the_band_holds_signal() -> None:
    x = training_photo("coffee")
    y = x + band_noise(x.shape, 0.15, 0.30, 0.06, seed=9)
    spec = BandSpec(regions=[Annulus(low=0.15, high=0.30)])
    entry = restore(y, RestoreRequest(band=spec, method="classical")).report["details"]["regions"][
        0
    ]
    assert entry["probe"]["chosen"] == "estimator"
    assert entry["probe"]["estimator_error"] < entry["probe"]["notch_error"]


def test_the_probe_shell_brackets_the_region_and_avoids_the_band() -> None:
    from sagd_core.restore.methods.classical.guard import probe_shell
    from sagd_core.spectral.masks import band_mask

    n = 96
    region = band_mask(BandSpec(regions=[Annulus(low=0.15, high=0.30)]), n, n)
    other = BandSpec(regions=[Annulus(low=0.15, high=0.30), Notch(fy=0.1, fx=0.05, radius=0.02)])
    band = band_mask(other, n, n)
    probe = probe_shell(region, band, n)
    assert probe is not None
    assert probe.sum() == (region > 0).sum()
    assert not np.any((probe > 0) & (band > 0))
    r = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :])
    assert r[probe > 0].min() < 0.15 and r[probe > 0].max() >= 0.30


def test_a_notch_over_something_that_is_not_a_sinusoid_ends_as_a_notch() -> None:
    """A notch region declared over a patch of narrow-band noise: the fit cannot explain it,
    the residual check sees the region still above its surroundings, drops the fit and deletes
    the band, so the result is the notch's, and the report says so."""
    x = training_photo("coffee")
    rng = np.random.default_rng(11)
    fy = np.fft.fftfreq(N)[:, None]
    fx = np.fft.fftfreq(N)[None, :]
    disk = (np.hypot(fy - 0.2, fx - 0.1) < 0.03) | (np.hypot(fy + 0.2, fx + 0.1) < 0.03)
    blob = np.fft.ifft2(np.fft.fft2(rng.standard_normal((N, N))) * disk).real
    y = x + blob * 0.05 / blob.std()
    spec = BandSpec(regions=[Notch(fy=0.2, fx=0.1, radius=0.035)])
    result = restore(y, RestoreRequest(band=spec, method="classical"))
    entry = result.report["details"]["regions"][0]
    assert entry["notched_after_fit"] and entry["residual_ratio"] > 4.0
    assert any("is dropped" in w for w in result.report["warnings"])
    assert entry["estimator"] == "notch" and result.report["bands"][0]["action"] == "omitted"
    assert np.allclose(result.unclipped, run(y, spec, "notch"), atol=1e-6)


def test_the_report_gives_the_notch_in_band_energy_beside_the_chosen_one() -> None:
    x = training_photo("coffee")
    y = x + band_noise(x.shape, 0.15, 0.30, 0.06, seed=12)
    spec = BandSpec(regions=[Annulus(low=0.15, high=0.30)], softness=0.02)
    classical = restore(y, RestoreRequest(band=spec, method="classical")).report
    notch = restore(y, RestoreRequest(band=spec, method="notch")).report
    total = classical["band_energy_total"]
    assert total["notch"] == pytest.approx(notch["band_energy_total"]["after"], rel=1e-9)
    assert 0.0 < total["notch"] < total["after"] < total["before"]  # soft edge: not all gone
