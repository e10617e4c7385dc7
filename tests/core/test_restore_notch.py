"""Notch restoration and input validation (DESIGN.md §4.1–4.2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sagd_core.restore import BandError, RestoreError, RestoreRequest, restore
from sagd_core.restore.fourier import rfft2
from sagd_core.restore.methods.notch import notch_gain
from sagd_core.spectral import band_mask, parse_band_spec
from sagd_core.spectral.bands import BandSpec, Wedge

ANNULUS = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
NOTCHES = parse_band_spec(
    {
        "regions": [
            {"kind": "notch", "fy": 0.0, "fx": 0.25, "radius": 0.03},
            {"kind": "wedge", "angle_deg": 90, "tolerance_deg": 4, "low": 0.1},
        ]
    }
)


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random(shape).astype(np.float32) * 0.6 + 0.2


def _spectrum(img: np.ndarray) -> np.ndarray:
    chw = img[None] if img.ndim == 2 else np.transpose(img, (2, 0, 1))
    return rfft2(torch.as_tensor(2.0 * chw.astype(np.float64) - 1.0)).numpy()


@pytest.mark.parametrize("shape", [(32, 32), (37, 50, 3), (40, 29, 1)])
@pytest.mark.parametrize("spec", [ANNULUS, NOTCHES])
def test_hard_notch_keeps_trusted_bins_and_zeroes_band(
    shape: tuple[int, ...], spec: object
) -> None:
    img = _image(shape)
    res = restore(img, RestoreRequest(band=spec, method="notch"))  # type: ignore[arg-type]
    assert res.image.shape == img.shape and res.image.dtype == np.float32
    assert res.report["out_of_band_residual"] <= 1e-5
    before, after = _spectrum(img), _spectrum(res.unclipped)
    m = band_mask(spec, shape[0], shape[1])  # type: ignore[arg-type]
    trusted = np.broadcast_to(m == 0, before.shape)
    rel = np.linalg.norm((after - before)[trusted]) / np.linalg.norm(before[trusted])
    assert rel <= 1e-5
    assert np.abs(after[np.broadcast_to(m > 0, after.shape)]).max() < 1e-5
    assert (
        res.report["band_energy_total"]["after"] < 1e-10 * res.report["band_energy_total"]["before"]
    )
    assert res.image.min() >= 0.0 and res.image.max() <= 1.0


@pytest.mark.parametrize("rolloff", ["gaussian", "butterworth"])
def test_smooth_rolloffs_zero_the_band_and_attenuate_near_it(rolloff: str) -> None:
    h, w = 48, 48
    gain = notch_gain(ANNULUS, h, w, rolloff)  # type: ignore[arg-type]
    hard = band_mask(ANNULUS, h, w)
    assert np.all(gain[hard > 0] == 0.0)
    assert np.all((gain >= 0.0) & (gain <= 1.0))
    # Far from the band the gain is ~1, next to it strictly between 0 and 1.
    r = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.rfftfreq(w)[None, :] ** 2)
    assert gain[(r > 0.45) & (hard == 0)].min() > 0.95
    near = (hard == 0) & (np.abs(r - 0.3) < 1.0 / h)
    assert near.any() and np.all(gain[near] < 1.0)
    img = _image((h, w))
    res = restore(img, RestoreRequest(band=ANNULUS, method="notch", notch_rolloff=rolloff))  # type: ignore[arg-type]
    assert res.report["band_energy_total"]["after"] < 1e-10
    assert res.report["out_of_band_residual"] > 1e-3  # smooth notches touch trusted bins
    assert res.report["bands"][0]["action"] == "attenuated"


def test_wider_rolloff_attenuates_more() -> None:
    narrow = notch_gain(ANNULUS, 64, 64, "gaussian", rolloff_width=0.01)
    wide = notch_gain(ANNULUS, 64, 64, "gaussian", rolloff_width=0.05)
    assert wide.sum() < narrow.sum()


def test_report_is_json_and_lists_each_band() -> None:
    res = restore(_image((33, 33, 3)), RestoreRequest(band=NOTCHES, method="notch"))
    text = json.dumps(res.report)
    back = json.loads(text)
    assert back["method"] == "notch"
    assert [b["index"] for b in back["bands"]] == [0, 1]
    for band in back["bands"]:
        assert band["energy_before"] > 0 and band["energy_after"] < 1e-12
        assert band["action"] == "omitted" and band["reason"]
    assert back["timings"]["total_s"] >= back["timings"]["method_s"] >= 0
    assert back["image"] == {"height": 33, "width": 33, "channels": 3}


def test_uint8_input_gives_same_result_as_float() -> None:
    ints = (np.random.default_rng(1).random((24, 24)) * 255).astype(np.uint8)
    a = restore(ints, RestoreRequest(band=ANNULUS, method="notch")).unclipped
    b = restore(ints.astype(np.float32) / 255.0, RestoreRequest(band=ANNULUS, method="notch"))
    np.testing.assert_allclose(a, b.unclipped, atol=1e-6)


def test_progress_reaches_total_and_exceptions_propagate() -> None:
    calls: list[tuple[int, int]] = []
    restore(
        _image((16, 16)),
        RestoreRequest(band=ANNULUS, method="notch"),
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls and calls[-1][0] == calls[-1][1]

    class Stop(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        restore(_image((16, 16)), RestoreRequest(band=ANNULUS, method="notch"), progress=cancel)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((16, 16), 0.5, dtype=np.float32), "constant"),
        (np.where(np.eye(16) > 0, np.nan, 0.5).astype(np.float32), "non-finite"),
        (np.zeros((16, 16, 2), dtype=np.float32) + np.arange(2), "channels"),
        (np.zeros((4, 16), dtype=np.float32) + np.arange(16), "at least"),
        (np.zeros((2, 16, 16, 1), dtype=np.float32), "(H, W)"),
        ([[0.0, 1.0]], "numpy array"),
        (np.ones((16, 16), dtype=np.int64), "pixel type"),
    ],
)
def test_bad_images_raise_readable_errors(image: object, message: str) -> None:
    with pytest.raises(RestoreError, match=message.replace("(", r"\(").replace(")", r"\)")):
        restore(image, RestoreRequest(band=ANNULUS, method="notch"))  # type: ignore[arg-type]


def test_ill_posed_and_empty_bands_are_refused() -> None:
    dc = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.0, "high": 0.1}]})
    with pytest.raises(BandError, match="DC"):
        restore(_image((32, 32)), RestoreRequest(band=dc, method="notch"))
    half = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.05, "high": 0.7}]})
    with pytest.raises(BandError, match="more than half"):
        restore(_image((32, 32)), RestoreRequest(band=half, method="notch"))
    tiny = parse_band_spec({"regions": [{"kind": "notch", "fy": 0.2, "fx": 0.2, "radius": 0.001}]})
    with pytest.raises(BandError, match="no frequency bin"):
        restore(_image((16, 16)), RestoreRequest(band=tiny, method="notch"))
    assert issubclass(BandError, ValueError)


def test_request_validation() -> None:
    with pytest.raises(ValueError):
        RestoreRequest(band=ANNULUS, samples=0)
    with pytest.raises(ValueError):
        RestoreRequest(band=ANNULUS, method="magic")  # type: ignore[arg-type]
    with pytest.raises(RestoreError, match="device"):
        restore(_image((16, 16)), RestoreRequest(band=ANNULUS, method="notch"), device="tpu9")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="hardware: a CUDA GPU is present; this test needs none"
)
def test_cuda_request_without_cuda_is_refused() -> None:
    with pytest.raises(RestoreError, match="CUDA"):
        restore(_image((16, 16)), RestoreRequest(band=ANNULUS, method="notch"), device="cuda")


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 37, 50), (2, 40, 29)])
def test_report_energies_match_full_grid_numpy_sums(shape: tuple[int, int, int]) -> None:
    """The report's energies (read off shared half-grid spectra) equal plain full-grid sums of
    ``|FFT|²`` under the full mask, and the residual is that of ``result − y`` itself."""
    from sagd_core.restore.report import BandAction, MethodOutcome, build_report
    from sagd_core.spectral.masks import check_spec_for_shape

    rng = np.random.default_rng(3)
    y = rng.standard_normal(shape)
    result = y + 0.1 * rng.standard_normal(shape)
    c, h, w = shape
    outcome = MethodOutcome(result[None], BandAction("omitted", "test"), "x")
    report = build_report(
        method="notch",
        spec=NOTCHES,
        mask_report=check_spec_for_shape(NOTCHES, h, w),
        y=y,
        result=result,
        outcome=outcome,
        request={},
        channels=c,
        device="cpu",
        timings={},
        samples=1,
        uncertainty_mean=None,
        clipped_fraction=0.0,
        tiles=None,
    )

    def energy(x: np.ndarray, mask: np.ndarray) -> float:
        power = np.abs(np.fft.fft2(x, norm="ortho")) ** 2
        return float((power * mask).sum() / x.size)

    full = band_mask(NOTCHES, h, w, half=False)
    assert report["band_energy_total"]["before"] == pytest.approx(energy(y, full), rel=1e-9)
    assert report["band_energy_total"]["after"] == pytest.approx(energy(result, full), rel=1e-9)
    trusted = (full == 0).astype(np.float64)
    expected = np.sqrt(energy(result - y, trusted) / energy(y, trusted))
    assert report["out_of_band_residual"] == pytest.approx(expected, rel=1e-9)
    for entry, sub in zip(report["bands"], NOTCHES.regions, strict=True):
        sub_mask = band_mask(NOTCHES.model_copy(update={"regions": [sub]}), h, w, half=False)
        assert entry["energy_before"] == pytest.approx(energy(y, sub_mask), rel=1e-9)
        assert entry["energy_after"] == pytest.approx(energy(result, sub_mask), rel=1e-9)


@pytest.mark.parametrize("rolloff", ["gaussian", "butterworth"])
def test_a_rolloff_never_attenuates_dc_or_its_neighbourhood(rolloff: str) -> None:
    """A wedge through the origin with a smooth roll-off keeps the image mean and the lowest
    frequencies (it used to dim the whole image: 19.4 dB against 26.0 dB unchanged)."""
    n = 64
    spec = BandSpec(regions=[Wedge(angle_deg=0, tolerance_deg=2, low=1.5 / n, high=1.0)])
    gain = notch_gain(spec, n, n, rolloff)  # type: ignore[arg-type]
    assert gain[0, 0] == 1.0
    r = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :])
    assert np.all(gain[(r > 0) & (r < 0.75 / n)] == 1.0)
    image = 0.3 + 0.4 * np.random.default_rng(0).random((n, n))
    out = restore(image, RestoreRequest(band=spec, method="notch", notch_rolloff=rolloff))  # type: ignore[arg-type]
    assert float(out.unclipped.mean()) == pytest.approx(float(image.mean()), abs=1e-6)  # float32
