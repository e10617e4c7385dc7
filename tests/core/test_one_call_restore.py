"""The one-call read wired into ``method="sagd"`` (``sagd_core.restore.methods.sagd``, point 2):
a band model trained on band-noise-corrupted images with forward noise of the corruption's shape
fills the band with ``one_call_clean_mean`` (one call per tile), labelled in the report, still
under the guard; and the calibration records what the read needs."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest
import torch

from sagd_core.calibration.fill import calibrate_fill_gain
from sagd_core.data import apply_corruption, parse_corruption
from sagd_core.models import UNet, unet_preset
from sagd_core.restore import ModelSet, RestoreRequest, restore
from sagd_core.restore.gaussian_oracle import WienerEps, power_law_spectrum, sample_gaussian_images
from sagd_core.restore.methods.corruption_shaped import (
    corruption_shaped_reason,
    one_call_clean_mean,
)
from sagd_core.restore.methods.recorrupted_risk import DRAWS
from sagd_core.restore.methods.sagd import ONE_CALL
from sagd_core.restore.models import LoadedModel
from sagd_core.spectral import NoiseSpec
from sagd_core.spectral.weights import noise_weights
from sagd_core.training.checkpoints import TrainedModel
from sagd_core.training.config import DataConfig, TrainConfig

GAMMA = 0.3
CORRUPTION = {"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": GAMMA}
BAND = parse_corruption(CORRUPTION).band_spec()
NOISE = NoiseSpec(kind="band", band=BAND)
SPECTRUM = {"scale": 0.002}
SIZE = 64


@pytest.fixture
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard keeps the read wherever its estimated error is the smaller: on stationary
    Gaussian images the classical tier is within about 0.15 dB of the exact read, a gain the
    guard's safety margin (``learned_guard.MARGIN`` standard deviations) does not accept."""
    from sagd_core.restore.methods import learned_guard

    monkeypatch.setattr(learned_guard, "MARGIN", 0.0)


class CorruptedStationaryEps(WienerEps):
    """The exact ε of a band model trained on ``x + c``: stationary Gaussian ``x`` (power ``λ``)
    and ``c ~ N(0, γ² Σ_w)``, i.e. the Wiener ε with the corrupted power ``λ + γ² w²``, at any
    size."""

    def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if (h, w) not in self._grids:
            w2 = noise_weights(self.noise, h, w) ** 2
            self._grids[(h, w)] = (w2, power_law_spectrum(h, w, **SPECTRUM) + GAMMA**2 * w2)
        return self._grids[(h, w)]


def _shaped(
    calibration: dict[str, Any] | None = None, corrupted: bool = True, declared: bool = False
) -> LoadedModel:
    config = TrainConfig(
        model=unet_preset("cpu-tiny", 1),
        noise=NOISE,
        band=BAND,
        role="band",
        data=DataConfig(
            corruption=CORRUPTION if corrupted else None,
            declared_corruption="noise" if declared else None,
        ),
    )
    schedule = config.schedule.build()
    meta: dict[str, Any] = {} if calibration is None else {"fill_calibration": calibration}
    return TrainedModel(
        net=cast(UNet, CorruptedStationaryEps(schedule, NOISE, SPECTRUM)),
        config=config,
        schedule=schedule,
        meta=meta,
        device=torch.device("cpu"),
    )


def _clean_and_corrupted(size: int = SIZE, count: int = 1, seed: int = 7) -> tuple[np.ndarray, ...]:
    clean = sample_gaussian_images(count, 1, size, size, seed=seed, **SPECTRUM)
    return clean, apply_corruption(clean, parse_corruption(CORRUPTION), seed=seed + 1)


@pytest.mark.usefixtures("no_margin")
def test_a_corruption_shaped_band_model_fills_with_one_call_and_the_guard_keeps_it() -> None:
    clean, corrupted = _clean_and_corrupted()
    y = (corrupted[0, 0] + 1.0) / 2.0
    model = _shaped()
    calls: list[int] = []
    model.net.register_forward_hook(lambda *_: calls.append(1))
    res = restore(y, RestoreRequest(band=BAND, method="sagd", steps=20), ModelSet(band=model))
    fill = res.report["details"]["fill"]
    assert fill["estimator"] == ONE_CALL and fill["steps"] == 1
    assert fill["corruption_std_from"] == "estimated from the image"
    assert fill["corruption_std"] == pytest.approx(GAMMA, rel=0.3)
    assert fill["read_excess_from"] == "default" and fill["in_range"]
    # one call on the image, one on each recorrupted copy of the guard
    assert len(calls) == 1 + DRAWS
    band = res.report["bands"][0]
    assert band["action"] == "filled" and band["reason"].startswith(ONE_CALL)
    region = res.report["details"]["guard"]["regions"][0]
    assert region["chosen"] == "learned" and region["learned_error"] < region["fallback_error"]
    assert not res.report["stochastic"] and res.uncertainty is None

    # The output is one_call_clean_mean's, with the read the report names.
    expected, info = one_call_clean_mean(
        model, torch.as_tensor(corrupted), fill["corruption_std"], dtype=torch.float32
    )
    assert info["t"] == fill["t"]
    np.testing.assert_allclose(2.0 * res.unclipped - 1.0, expected[0, 0].numpy(), atol=1e-5)
    assert res.report["out_of_band_residual"] <= 1e-5
    # ... and it restores: closer to the clean image than the corrupted input and the notch.
    notch = restore(y, RestoreRequest(band=BAND, method="notch"))
    err = float(((2.0 * res.unclipped - 1.0 - clean[0, 0]) ** 2).mean())
    assert err < float(((corrupted[0, 0] - clean[0, 0]) ** 2).mean())
    assert err < float(((2.0 * notch.unclipped - 1.0 - clean[0, 0]) ** 2).mean())


class _WrongPriorEps(CorruptedStationaryEps):
    """The exact ε of a band model whose data had 30 times the true clean power in the band
    (a model of other images): its read keeps far too much of the band noise."""

    def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        w2, power = super()._grid(h, w)
        return w2, power + 30.0 * power_law_spectrum(h, w, **SPECTRUM) * (w2 > 0)


def test_the_read_is_checked_on_recorrupted_copies_of_the_image_and_falls_back_when_it_loses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard of the one-call read estimates both errors on the image itself (recorrupted
    copies, ``recorrupted_risk``), not on a decimated probe; a read of the wrong prior loses
    there and the classical tier's estimate is returned, with both errors in the warning."""
    from sagd_core.restore.methods import learned_guard

    clean, corrupted = _clean_and_corrupted(size=128)
    y = (corrupted[0, 0] + 1.0) / 2.0
    good = restore(y, RestoreRequest(band=BAND, method="sagd"), ModelSet(band=_shaped()))
    guard = good.report["details"]["guard"]
    assert guard["probe"] is None and "recorrupted" in guard["check"]
    # the exact read is estimated better, but by less than the margin: the classical tier stays
    first = guard["regions"][0]
    gap = first["learned_error"] - first["fallback_error"]
    assert -learned_guard.MARGIN * first["difference_std"] < gap < 0.0
    assert first["chosen"] == "classical"
    monkeypatch.setattr(learned_guard, "MARGIN", 0.0)
    good = restore(y, RestoreRequest(band=BAND, method="sagd"), ModelSet(band=_shaped()))
    assert good.report["details"]["guard"]["regions"][0]["chosen"] == "learned"

    shaped = _shaped()
    wrong = TrainedModel(
        net=cast(UNet, _WrongPriorEps(shaped.schedule, NOISE, SPECTRUM)),
        config=shaped.config,
        schedule=shaped.schedule,
        meta={},
        device=torch.device("cpu"),
    )
    res = restore(y, RestoreRequest(band=BAND, method="sagd"), ModelSet(band=wrong))
    region = res.report["details"]["guard"]["regions"][0]
    assert region["chosen"] == "classical" and region["learned_error"] > region["fallback_error"]
    lost = [w for w in res.report["warnings"] if "lost to the classical tier" in w]
    assert len(lost) == 1 and "recorrupted copies of this image" in lost[0]
    assert f"{region['learned_error']:.4g}" in lost[0]
    classical = restore(y, RestoreRequest(band=BAND, method="classical"))
    np.testing.assert_allclose(res.unclipped, classical.unclipped, atol=1e-9)

    # the guard's verdict is the truth's: the wrong read is worse than the classical tier
    def error(u: np.ndarray) -> float:
        return float(((2.0 * u - 1.0 - clean[0, 0]) ** 2).mean())

    unguarded, _ = one_call_clean_mean(
        wrong, torch.as_tensor(corrupted), res.report["details"]["fill"]["corruption_std"]
    )
    assert float(((unguarded[0, 0].double().numpy() - clean[0, 0]) ** 2).mean()) > error(
        classical.unclipped
    )
    assert error(good.unclipped) < error(classical.unclipped)


def test_the_read_uses_the_calibrated_level_and_warns_outside_the_schedule() -> None:
    _, corrupted = _clean_and_corrupted()
    y = (corrupted[0, 0] + 1.0) / 2.0
    calib = {"gain": 1.0, "size": [SIZE, SIZE], "corruption_var": 0.09, "read_excess": 0.1}
    res = restore(y, RestoreRequest(band=BAND, method="sagd"), ModelSet(band=_shaped(calib)))
    fill = res.report["details"]["fill"]
    assert (
        fill["corruption_std"] == pytest.approx(0.3)
        and fill["corruption_std_from"] == "calibration"
    )
    assert (fill["read_excess"], fill["read_excess_from"]) == (0.1, "calibration (SURE)")
    other_size = {**calib, "size": [32, 32]}
    res = restore(y, RestoreRequest(band=BAND, method="sagd"), ModelSet(band=_shaped(other_size)))
    assert res.report["details"]["fill"]["read_excess_from"] == "default"  # κ is per size

    weak = {**calib, "corruption_var": 1e-6}  # κ s² below the schedule's smallest noise
    res = restore(y, RestoreRequest(band=BAND, method="sagd"), ModelSet(band=_shaped(weak)))
    assert res.report["details"]["fill"]["in_range"] is False
    assert any("outside the band model's schedule" in w for w in res.report["warnings"])


def test_the_one_call_read_is_only_taken_where_it_holds() -> None:
    _, corrupted = _clean_and_corrupted()
    y = (corrupted[0, 0] + 1.0) / 2.0
    assert corruption_shaped_reason(_shaped(corrupted=False)) is None
    plain = restore(
        y,
        RestoreRequest(band=BAND, method="sagd", steps=5),
        ModelSet(band=_shaped(corrupted=False)),
    )
    assert plain.report["details"]["fill"]["estimator"] != ONE_CALL
    sampled = restore(
        y,
        RestoreRequest(band=BAND, method="sagd", steps=5, estimator="sample"),
        ModelSet(band=_shaped()),
    )
    assert sampled.report["details"]["fill"]["estimator"] == "sample"
    assert "estimator 'sample'" in sampled.report["details"]["one_call"]
    # a folder-trained model is declared corruption-shaped by its calibration
    declared = _shaped({"gain": 1.0, "corruption_shaped": True}, corrupted=False)
    assert corruption_shaped_reason(declared) is not None


def test_calibration_records_its_size_and_the_one_call_read() -> None:
    size = 16
    _, corrupted = _clean_and_corrupted(size=size, count=4, seed=3)
    model = _shaped()
    calib = calibrate_fill_gain(model, corrupted, BAND, steps=4, samples=1, read_levels=(0.1,))
    assert calib["size"] == [size, size]
    assert calib["corruption_shaped"] is True
    assert calib["corruption_var"] == pytest.approx(GAMMA**2, rel=0.5)
    assert calib["read_excess"] in (0.03, 0.1, 0.3, 1.0)
    assert set(calib["read_sure"]) == {"0.03", "0.1", "0.3", "1.0"}
    assert calib["read_sure"][str(calib["read_excess"])] == min(calib["read_sure"].values())
    plain = calibrate_fill_gain(
        _shaped(corrupted=False), corrupted, BAND, steps=4, samples=1, read_levels=(0.1,)
    )
    assert "corruption_var" not in plain and plain["size"] == [size, size]


@pytest.mark.usefixtures("no_margin")
def test_auto_takes_the_guarded_read_of_a_corruption_shaped_band_model_and_nothing_else() -> None:
    """``auto`` with a band model trained on noise of its band's shape runs that model's one-call
    read under the guard (here the exact ε, with no margin: the read wins and is kept, and the
    result is sagd's); with any other band model, declared input noise or another band, it says
    the model was not used and takes the shipped band reader's guarded read instead (the band
    is noise-like)."""
    clean, corrupted = _clean_and_corrupted()
    y = (corrupted[0, 0] + 1.0) / 2.0
    shaped = ModelSet(band=_shaped())
    auto = restore(y, RestoreRequest(band=BAND, method="auto"), shaped)
    assert auto.report["method"] == "auto"
    assert auto.report["details"]["auto"]["chosen"] == "sagd"
    assert "trained on band_noise corrupted images" in auto.report["details"]["auto"]["why"]
    assert auto.report["details"]["fill"]["estimator"] == ONE_CALL
    sagd = restore(y, RestoreRequest(band=BAND, method="sagd"), shaped)
    np.testing.assert_array_equal(auto.unclipped, sagd.unclipped)
    classical = restore(y, RestoreRequest(band=BAND, method="classical"))
    err = {
        k: float(((2 * r.unclipped - 1 - clean[0, 0]) ** 2).mean())
        for k, r in {"auto": auto, "classical": classical}.items()
    }
    assert err["auto"] <= err["classical"]

    not_shaped = ModelSet(band=_shaped(corrupted=False))
    other_band = BAND.model_copy(
        update={"regions": [BAND.regions[0].model_copy(update={"high": 0.35})]}
    )
    for request, models, reason in [
        (RestoreRequest(band=BAND, method="auto"), not_shaped, "not trained on images corrupted"),
        (
            RestoreRequest(band=BAND, method="auto", input_noise_std=0.05),
            shaped,
            "broadband noise is declared",
        ),
        (RestoreRequest(band=other_band, method="auto"), shaped, "another band"),
    ]:
        res = restore(y, request, models)
        assert "band reader" in res.report["details"]["auto"]["why"]
        assert "band_read" in res.report["details"]  # the reader ran (its guard decides)
        warned = [w for w in res.report["warnings"] if "did not use the given model" in w]
        assert len(warned) == 1 and reason in warned[0]
    bare = restore(y, RestoreRequest(band=BAND, method="auto"))
    assert "band reader" in bare.report["details"]["auto"]["why"]
    assert not any("did not use" in w for w in bare.report["warnings"])


def test_a_band_model_trained_on_images_declared_noisy_is_read_in_one_call() -> None:
    """A user's own folder has no synthetic corruption to name: declaring at training that the
    images hold noise flat in the band (``data.declared_corruption``) makes the band model a
    corruption-shaped one, which ``auto`` then reads under its guard."""
    declared = _shaped(corrupted=False, declared=True)
    assert corruption_shaped_reason(declared) is not None
    assert "declared" in str(corruption_shaped_reason(declared))
    assert corruption_shaped_reason(_shaped(corrupted=False)) is None
    _clean, corrupted = _clean_and_corrupted()
    y = (corrupted[0, 0] + 1.0) / 2.0
    auto = restore(y, RestoreRequest(band=BAND, method="auto"), ModelSet(band=declared))
    assert auto.report["details"]["auto"]["chosen"] in ("sagd", "classical")
    assert "declared corrupted by noise" in auto.report["details"]["auto"]["why"]
    assert auto.report["details"]["fill"]["estimator"] == ONE_CALL


def test_auto_reads_with_the_band_model_alone_and_says_why_not_on_other_channels() -> None:
    """A full model of other channels beside the band model does not stop auto's read (it runs
    with the band model alone); a band model of other channels than the image is not used."""
    from sagd_core.models.default import DEFAULT_MODEL_DIR
    from sagd_core.restore.models import load_model

    _clean, corrupted = _clean_and_corrupted()
    y = (corrupted[0, 0] + 1.0) / 2.0
    rgb_full = load_model(DEFAULT_MODEL_DIR)
    mixed = ModelSet(band=_shaped(), full=rgb_full)
    auto = restore(y, RestoreRequest(band=BAND, method="auto"), mixed)
    alone = restore(y, RestoreRequest(band=BAND, method="auto"), ModelSet(band=_shaped()))
    assert auto.report["details"]["auto"]["why"] == alone.report["details"]["auto"]["why"]
    np.testing.assert_array_equal(auto.unclipped, alone.unclipped)
    rgb = np.repeat(y[..., None], 3, axis=-1)
    other = restore(rgb, RestoreRequest(band=BAND, method="auto"), ModelSet(band=_shaped()))
    assert "band reader" in other.report["details"]["auto"]["why"]
    warned = [w for w in other.report["warnings"] if "did not use the given model" in w]
    assert len(warned) == 1 and "trained on 1-channel images and the image has 3" in warned[0]
