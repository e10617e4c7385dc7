"""Restoration with a designed sampling schedule (issue #4: ``sagd restore`` accepts a fitted
schedule): request validation, cut plans for chains that start below the top, the plans the
chains actually visit, and ``sagd restore --schedule``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from sagd_core.cli import restore_cmd
from sagd_core.cli.common import CliError
from sagd_core.data import write_image
from sagd_core.models import unet_preset
from sagd_core.restore import ModelSet, RestoreRequest, restore
from sagd_core.restore.errors import RestoreError
from sagd_core.restore.gaussian_oracle import oracle_model, sample_gaussian_images
from sagd_core.restore.methods.sagd import as_raw_fill
from sagd_core.restore.plans import plan_source
from sagd_core.restore.request import RestoreSchedule
from sagd_core.schedule_design.fitted import FittedSchedule
from sagd_core.schedule_design.heuristics import cosine_alpha_bars
from sagd_core.schedules import make_schedule
from sagd_core.spectral import NoiseSpec, parse_band_spec
from sagd_core.training.config import DataConfig, TrainConfig

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
SPECTRUM = {"scale": 0.002}
GRID = (0.9, 0.5, 0.2, 0.05, 0.01)


def _band_model():  # type: ignore[no-untyped-def]
    """The oracle band model, its fill run as it is (no probe-band guard)."""
    model = oracle_model("band", NoiseSpec(kind="band", band=BAND), band=BAND, spectrum=SPECTRUM)
    return as_raw_fill(model)


def _omission_model():  # type: ignore[no-untyped-def]
    return oracle_model("omission", NoiseSpec(omit=BAND), band=BAND, spectrum=SPECTRUM)


def _digits_band_config(count: int | None = None, **training: Any) -> TrainConfig:
    """A cpu-tiny band model of BAND on 16×16 digits corrupted by band noise in BAND."""
    corruption = {"kind": "band_noise", "gamma": 1.0, "low": 0.15, "high": 0.3}
    return TrainConfig(
        model=unet_preset("cpu-tiny", 1),
        noise=NoiseSpec(kind="band", band=BAND),
        band=BAND,
        role="band",
        data=DataConfig(source="digits", image_size=16, count=count, corruption=corruption),
        **training,
    )


def _image(seed: int = 3) -> np.ndarray:
    x = sample_gaussian_images(1, 1, 32, 32, seed=seed, **SPECTRUM)[0, 0]
    return ((x + 1.0) / 2.0).astype(np.float32)


def _fitted(grid: tuple[float, ...] = GRID, final: float = 1.0) -> FittedSchedule:
    return FittedSchedule(
        alpha_bars=np.array(grid),
        final_alpha_bar=final,
        sampler="ddpm",
        loss="w2",
        init="test",
        num_train_timesteps=1000,
        prior_variance=1.0,
        loss_init=2.0,
        loss_final=1.0,
        method="test",
        success=True,
        iterations=1,
        margin=0.0,
    )


def test_request_schedule_validation() -> None:
    assert RestoreRequest(method="sagd", band=BAND).schedule.kind == "model"
    assert RestoreRequest(method="sagd", band=BAND, schedule="cosine").schedule.kind == "cosine"
    grid = RestoreSchedule.from_fitted(_fitted())
    assert grid.kind == "grid" and grid.num_steps == 5
    assert RestoreRequest(method="sagd", band=BAND, steps=5, schedule=grid).schedule == grid
    with pytest.raises(ValidationError, match="5 levels but steps is 50"):
        RestoreRequest(method="sagd", band=BAND, schedule=grid)
    with pytest.raises(ValidationError, match="strictly decreasing"):
        RestoreSchedule(kind="grid", alpha_bars=(0.2, 0.5))
    with pytest.raises(ValidationError, match="required for kind 'grid'"):
        RestoreSchedule(kind="grid")
    with pytest.raises(ValidationError, match="only allowed there"):
        RestoreSchedule(kind="fit", alpha_bars=(0.5, 0.2))
    with pytest.raises(ValidationError):
        RestoreRequest(method="sagd", band=BAND, schedule="geometric")
    # JSON round trip (the worker receives requests as JSON).
    request = RestoreRequest(method="sagd", band=BAND, steps=5, schedule=grid)
    assert RestoreRequest.model_validate_json(request.model_dump_json()) == request


def test_started_at_cuts_a_designed_plan_at_the_given_level() -> None:
    schedule = make_schedule("linear")
    plan = schedule.plan_from_alpha_bars(GRID)
    assert np.allclose(plan.alpha_bars, sorted(GRID))
    t_max = int(np.searchsorted(-schedule.alpha_bars, -0.3))  # ᾱ(t_max) just below 0.3
    a_start = float(schedule.alpha_bars[t_max])
    cut = plan.started_at(t_max)
    assert cut.timesteps[0] == t_max and cut.alpha_bars[0] == a_start
    assert np.allclose(cut.alpha_bars[1:], [0.5, 0.9])
    assert cut.final_alpha_bar == plan.final_alpha_bar
    # A level equal to the start is not visited twice.
    levels = schedule.alpha_bars[[100, 300, 500, 700]]
    same = schedule.plan_from_alpha_bars(levels).started_at(300)
    assert np.allclose(same.alpha_bars, levels[[1, 0]])


def test_restore_visits_the_grid_of_a_fitted_schedule_file() -> None:
    model = _band_model()
    grid = RestoreSchedule.from_fitted(_fitted())
    request = RestoreRequest(method="sagd", band=BAND, steps=5, schedule=grid, seed=1)
    seen: list[tuple[int, int]] = []
    res = restore(
        _image(),
        request,
        ModelSet(band=model),
        progress=lambda done, total: seen.append((done, total)),
    )
    plan = res.report["schedule"]["plans"]["band"]
    assert plan["alpha_bars"] == sorted(GRID)
    # The posterior-mean fill stops at the first level with ᾱ ≥ 0.1: 0.01, 0.05, 0.2.
    assert res.report["details"]["fill"]["steps"] == 3
    assert seen[-1] == (3, 3)
    assert res.report["out_of_band_residual"] < 1e-5
    # The model's own schedule is the default and leaves the report without a schedule entry.
    own = restore(
        _image(), RestoreRequest(method="sagd", band=BAND, steps=5, seed=1), ModelSet(band=model)
    )
    assert "schedule" not in own.report
    same = restore(
        _image(),
        RestoreRequest(method="sagd", band=BAND, steps=5, seed=1, schedule="model"),
        ModelSet(band=model),
    )
    assert np.array_equal(own.unclipped, same.unclipped)
    assert not np.allclose(own.unclipped, res.unclipped)


def test_heuristic_and_fitted_kinds_give_n_level_plans() -> None:
    model = _band_model()
    cos = plan_source(model, RestoreSchedule(kind="cosine"), height=32, width=32)(8)
    assert np.allclose(cos.alpha_bars, cosine_alpha_bars(8)[::-1])
    assert cos.schedule is model.schedule  # model times on the model's own training schedule
    assert model.schedule.plan(8).alpha_bars.size == 8  # the original model is untouched
    # 'fit' needs the model's data spectrum; an unusable one fails before any work.
    model.meta["spectrum"] = "not a spectrum"
    calls: list[int] = []
    with pytest.raises(RestoreError, match="schedule 'fit' unusable for the band model"):
        restore(
            _image(),
            RestoreRequest(method="sagd", band=BAND, steps=4, schedule="fit"),
            ModelSet(band=model),
            progress=lambda done, total: calls.append(done),
        )
    assert calls == []


def test_fit_uses_the_models_spectrum(monkeypatch: pytest.MonkeyPatch) -> None:
    from sagd_core.planning import fill as fill_plan
    from sagd_core.planning import for_model
    from sagd_core.schedule_design.spectrum import estimate_spectrum

    images = sample_gaussian_images(64, 1, 32, 32, seed=0, **SPECTRUM)
    model = _band_model()
    model.meta["spectrum"] = estimate_spectrum(images).to_dict()
    for_model.clear_cache()
    fill_plan.clear_cache()
    res = restore(
        _image(),
        RestoreRequest(method="sagd", band=BAND, steps=6, schedule="fit"),
        ModelSet(band=model),
    )
    plan = res.report["schedule"]["plans"]["band"]
    # A band model's plan is designed for the fill chain: as many calls as its own schedule's
    # 6-step plan up to the posterior-mean read, the levels below the cut fitted, same read.
    designed = fill_plan.fill_plan_for_model(model, 6, height=32, width=32)
    own = model.schedule.plan(6).truncated()
    assert plan["steps"] == 6
    assert np.allclose(plan["alpha_bars"], designed.alpha_bars, rtol=1e-5)
    assert res.report["details"]["fill"]["steps"] == len(own)
    assert designed.truncated().alpha_bars[-1] == own.alpha_bars[-1]
    # Other roles keep the generation fit over the whole range.
    omission = _omission_model()
    omission.meta["spectrum"] = model.meta["spectrum"]
    scheduled = plan_source(omission, RestoreSchedule(kind="fit"), height=32, width=32)(6)
    fitted = for_model.fitted_schedule_for_model(omission, 6, sampler="ddpm", height=32, width=32)
    assert np.allclose(scheduled.alpha_bars, fitted.alpha_bars[::-1])


def test_denoiser_chain_is_cut_at_the_noise_level() -> None:
    model = _omission_model()
    request = RestoreRequest(
        method="sagd",
        band=BAND,
        steps=5,
        input_noise_std=0.1,
        estimator="sample",
        schedule=RestoreSchedule.from_fitted(_fitted()),
    )
    res = restore(_image(), request, ModelSet(omission=model))
    details = res.report["details"]["denoise"]
    t_start = details["t_start"]
    a_start = float(model.schedule.alpha_bars[int(t_start)])
    # Start level plus the grid levels above it.
    assert details["steps"] == 1 + sum(a > a_start * (1 + 1e-9) for a in GRID)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    restore_cmd.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_restore_cli_schedule_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _band_model()
    monkeypatch.setattr(
        restore_cmd.ModelSet,
        "load",
        classmethod(lambda cls, dirs, device="cpu": ModelSet(band=model)),
    )
    write_image(tmp_path / "x.png", _image())
    (tmp_path / "s.json").write_text(_fitted().to_json())
    base = [
        "restore",
        str(tmp_path / "x.png"),
        "-o",
        str(tmp_path / "out"),
        "--band",
        json.dumps(BAND.model_dump(mode="json")),
        "--method",
        "sagd",
        "--model",
        str(tmp_path),
        "--no-progress",
    ]
    args = _parse([*base, "--schedule", str(tmp_path / "s.json")])
    assert args.func(args) == 0
    report = json.loads((tmp_path / "out" / "x.report.json").read_text())
    assert report["request"]["steps"] == 5
    assert report["schedule"]["plans"]["band"]["alpha_bars"] == sorted(GRID)
    args = _parse([*base, "--schedule", str(tmp_path / "s.json"), "--steps", "7"])
    with pytest.raises(CliError, match="5 levels"):
        args.func(args)
    args = _parse([*base, "--schedule", str(tmp_path / "missing.json")])
    with pytest.raises(CliError, match=r"missing\.json"):
        args.func(args)
    args = _parse([*base, "--schedule", "cosine", "--steps", "6"])
    assert args.func(args) == 0
    report = json.loads((tmp_path / "out" / "x.report.json").read_text())
    assert report["schedule"]["kind"] == "cosine"


def test_restore_bench_curve_and_verdicts() -> None:
    """Part (b) of ``sagd bench schedule`` on a (random-weight) band model of corrupted digits."""
    import torch

    from sagd_core.bench import schedule_restore as rb
    from sagd_core.models import UNet
    from sagd_core.planning import for_model
    from sagd_core.training.checkpoints import TrainedModel

    config = _digits_band_config()
    model = TrainedModel(
        net=UNet(config.model).eval(),
        config=config,
        schedule=config.schedule.build(),
        meta={},
        device=torch.device("cpu"),
    )
    for_model.clear_cache()
    steps = {"linear": [2, 4], "cosine": [4], "optimized": [4]}
    curve = rb.restore_curve(model, "m", steps, images=3, seeds=(0, 1))
    assert curve.images == 3 and set(curve.rows) == {"linear", "cosine", "optimized"}
    assert curve.rows["linear"][4]["calls"] == 3  # 4 levels, the read at the first ᾱ ≥ 0.1
    assert all(np.isfinite(r["psnr"]) for rows in curve.rows.values() for r in rows.values())
    table = rb.markdown_table(curve)
    assert table.count("\n") == 3 and "(3)" in table
    lines = rb.verdicts(curve, reference_steps=4)
    assert lines[0].startswith("Best heuristic at N = 4:") and len(lines) == 4
    assert rb.verdicts(curve, reference_steps=50) == []
    # A read level applies to every schedule, the model's own included, at the same calls.
    read = rb.restore_curve(
        model, "m", {"linear": [4], "optimized": [4]}, images=2, seeds=(0,), read_alpha_bar=0.5
    )
    assert read.rows["linear"][4]["calls"] == read.rows["optimized"][4]["calls"] == 3
    assert all(np.isfinite(r[4]["psnr"]) for r in read.rows.values())
    clean, corrupted = rb.held_out(model, 3)
    assert clean.shape == corrupted.shape == (3, 1, 16, 16) and not np.allclose(clean, corrupted)


def test_bench_schedule_restoration_part_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sagd_core.cli import bench_schedule
    from sagd_core.training import train

    config = _digits_band_config(count=16, steps=2, batch_size=4, warmup_steps=1, device="cpu")
    train(config, tmp_path / "band")
    parser = argparse.ArgumentParser()
    bench_schedule.register_bench(parser.add_subparsers())
    args = parser.parse_args(
        [
            "schedule",
            "--skip-gaussian",
            "--restore-model",
            str(tmp_path / "band"),
            "--restore-steps",
            "2,4",
            "--restore-images",
            "2",
            "--restore-seeds",
            "0",
            "--reference-steps",
            "4",
            "--out",
            str(tmp_path / "plots"),
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "restoration PSNR vs N" in out and "| 4 |" in out
    assert "Best heuristic at N = 4" in out and "- optimized:" in out
    args = parser.parse_args(
        [
            "schedule",
            "--skip-gaussian",
            "--restore-model",
            str(tmp_path / "band"),
            "--restore-read-alpha-bar",
            "0.05",
        ]
    )
    with pytest.raises(CliError, match="read-alpha-bar"):
        args.func(args)
    args = parser.parse_args(["schedule", "--skip-gaussian"])
    with pytest.raises(CliError, match="nothing to do"):
        args.func(args)
    args = parser.parse_args(
        ["schedule", "--skip-gaussian", "--restore-model", str(tmp_path / "nope")]
    )
    with pytest.raises(CliError, match="does not exist"):
        args.func(args)


def test_clamped_grid_warns_once_per_grid(caplog: pytest.LogCaptureFixture) -> None:
    from sagd_core.schedule_design.plans import plan_from_grid

    schedule = make_schedule("linear")
    grid = np.array([0.9999999, 0.7, 0.3, 0.123456, 0.01])
    with caplog.at_level("WARNING"):
        plan_from_grid(grid, schedule)
        plan_from_grid(grid, schedule)
    assert caplog.text.count("1 of 5 ᾱ levels lie outside") == 1


def test_ddnm_follows_the_schedule() -> None:
    full = oracle_model("full", NoiseSpec(), spectrum=SPECTRUM)
    grid = RestoreSchedule.from_fitted(_fitted())
    seen: list[int] = []
    res = restore(
        _image(),
        RestoreRequest(band=BAND, method="ddnm", steps=5, schedule=grid),
        ModelSet(full=full),
        progress=lambda done, total: seen.append(total),
    )
    assert res.report["details"]["steps"] == 5 and set(seen) == {5}
    assert res.report["schedule"]["plans"]["full"]["alpha_bars"] == sorted(GRID)
    assert res.report["out_of_band_residual"] < 1e-5
