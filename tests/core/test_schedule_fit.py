"""Using fitted schedules: the data mean term, spectrum resizing, fitted-schedule files → sampling
plans, a model fitting its own schedule (cached), and ``sagd schedule fit|show``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sagd_core.cli import schedule_cmd
from sagd_core.cli.common import CliError
from sagd_core.models import UNet, unet_preset
from sagd_core.planning import for_model as fm
from sagd_core.schedule_design import (
    FittedSchedule,
    ScheduleFitError,
    Spectrum,
    estimate_spectrum,
    gaussian_spectrum_power_law,
    grid_from_plan,
    heuristic_plan,
    linear_alpha_bars,
    load_fitted_plan,
    mean_error_gain,
    optimize_schedule,
    plan_for_fitted,
    plan_from_grid,
    schedule_loss,
)
from sagd_core.schedules import make_schedule
from sagd_core.spectral import NoiseSpec, parse_band_spec
from sagd_core.training import TrainedModel, training_preset

SCHEDULE = make_schedule("linear")


def _spectrum_with_mean(size: int = 8) -> Spectrum:
    base = gaussian_spectrum_power_law(size, size, -2.0, pixel_variance=0.2)
    mean_power = np.zeros_like(base.lam)
    mean_power[0, 0, 0] = 0.3 * size * size  # a constant mean image of level √0.3
    mean_power[0, 1, 1] = 2.0
    return Spectrum(base.lam, size, size, mean_power=mean_power)


# --- the data mean ---------------------------------------------------------------------------


def test_estimate_records_the_mean_power_and_it_round_trips() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2, 6, 5)) * 0.1 + np.linspace(-1, 1, 5)
    spec = estimate_spectrum(x)
    assert spec.mean_power is not None
    mean = np.fft.rfft2(x.mean(axis=0), norm="ortho")
    np.testing.assert_allclose(spec.mean_power, np.abs(mean) ** 2, rtol=1e-10, atol=1e-12)
    again = Spectrum.from_json(spec.to_json())
    assert again.mean_power is not None
    np.testing.assert_array_equal(again.mean_power, spec.mean_power)
    old_style = json.loads(spec.to_json())
    del old_style["mean_power"]  # documents saved before the field existed still load
    assert Spectrum.from_dict(old_style).mean_power is None
    with pytest.raises(ValueError, match="mean_power"):
        Spectrum(spec.lam, 6, 5, mean_power=np.ones((1, 6, 3)))


def test_whiten_divides_the_mean_power_too() -> None:
    spec = _spectrum_with_mean()
    w = np.full((8, 5), 2.0)
    w[3, 2] = 0.0
    white = spec.whiten(w)
    assert white.mean_power is not None and spec.mean_power is not None
    np.testing.assert_allclose(white.mean_power[0, 0, 0], spec.mean_power[0, 0, 0] / 4)
    assert white.mean_power[0, 3, 2] == 0.0


def test_mean_error_gain_is_the_simulated_mean_error() -> None:
    lam = np.array([0.01, 0.5, 3.0, 40.0])
    grid = linear_alpha_bars(6)
    for sampler in ("ddim", "ddpm"):
        # Deterministic part of the recursion with the Wiener denoiser including the mean μ = 1.
        ab = np.concatenate([[1.0], grid])
        x = np.zeros_like(lam)  # zero-mean prior
        for i in range(ab.size - 1, 0, -1):
            prev, cur = ab[i - 1], ab[i]
            x0 = 1.0 + np.sqrt(cur) * lam / (cur * lam + 1 - cur) * (x - np.sqrt(cur))
            eps = (x - np.sqrt(cur) * x0) / np.sqrt(1 - cur)
            if sampler == "ddim":
                x = np.sqrt(prev) * x0 + np.sqrt(1 - prev) * eps
            else:
                beta = 1 - cur / prev
                x = (np.sqrt(prev) * beta * x0 + np.sqrt(cur / prev) * (1 - prev) * x) / (1 - cur)
        e = mean_error_gain(grid, lam, sampler=sampler)
        np.testing.assert_allclose(x - 1.0, e, rtol=1e-10, atol=1e-14)


def test_mean_term_pushes_the_prior_level_down() -> None:
    spec = _spectrum_with_mean()
    with_mean = optimize_schedule(spec, 6, max_iter=200)
    without = optimize_schedule(spec, 6, max_iter=200, use_mean=False)
    assert with_mean.alpha_bars[-1] <= without.alpha_bars[-1]
    # The loss with the mean is the zero-mean loss plus a non-negative term.
    grid = linear_alpha_bars(6)
    assert schedule_loss(grid, spec) > schedule_loss(grid, spec, use_mean=False)
    assert schedule_loss(grid, spec.without_mean()) == schedule_loss(grid, spec, use_mean=False)


def test_alpha_bar_range_bounds_the_fit() -> None:
    spec = gaussian_spectrum_power_law(8, 8, -2.0)
    lo, hi = float(SCHEDULE.alpha_bars[-1]), float(SCHEDULE.alpha_bars[0])
    fitted = optimize_schedule(spec, 5, alpha_bar_range=(lo, hi))
    assert np.all(fitted.alpha_bars >= lo * (1 - 1e-12))
    assert np.all(fitted.alpha_bars <= hi * (1 + 1e-12))
    with pytest.raises(ScheduleFitError, match="0 < low < high < 1"):
        optimize_schedule(spec, 5, alpha_bar_range=(0.5, 0.1))


# --- resizing --------------------------------------------------------------------------------


def test_resized_power_law_matches_the_power_law_at_the_new_size() -> None:
    spec = gaussian_spectrum_power_law(16, 16, -2.0, r_min=1 / 8)
    assert spec.resized(16, 16) is spec
    big = spec.resized(32, 24)
    target = gaussian_spectrum_power_law(32, 24, -2.0, r_min=1 / 8)
    assert big.lam.shape == (1, 32, 13) and big.radial
    # Interpolation between ring centres: close, not exact.
    np.testing.assert_allclose(big.lam, target.lam, rtol=0.15)


def test_resized_keeps_only_the_mean_level() -> None:
    spec = _spectrum_with_mean(8)
    big = spec.resized(16, 16)
    assert big.mean_power is not None
    assert big.mean_power[0, 0, 0] == pytest.approx(0.3 * 256)
    assert np.count_nonzero(big.mean_power) == 1


# --- fitted schedule files → plans -----------------------------------------------------------


def test_fitted_file_loads_into_a_plan(tmp_path: Path) -> None:
    fitted = optimize_schedule(
        gaussian_spectrum_power_law(8, 8, -2.0),
        7,
        alpha_bar_range=(float(SCHEDULE.alpha_bars[-1]), 0.9999),
    )
    path = tmp_path / "s.json"
    path.write_text(fitted.to_json())
    plan = load_fitted_plan(path, SCHEDULE)
    assert len(plan) == 7
    np.testing.assert_array_equal(plan.alpha_bars, fitted.alpha_bars[::-1])
    assert plan.final_alpha_bar == fitted.final_alpha_bar
    assert np.all(np.diff(plan.timesteps) < 0)  # model time decreases along the plan
    # Model times reproduce the levels on the training schedule (log-SNR interpolation).
    back = np.interp(plan.timesteps, np.arange(1000), SCHEDULE.alpha_bars)
    np.testing.assert_allclose(back, plan.alpha_bars, rtol=2e-3)
    grid, final = grid_from_plan(plan)
    np.testing.assert_array_equal(grid, fitted.alpha_bars)
    assert final == fitted.final_alpha_bar
    assert plan_for_fitted(fitted, SCHEDULE).to_dict() == plan.to_dict()


def test_heuristic_plan_of_the_own_schedule_is_its_plan() -> None:
    plan = heuristic_plan("linear", 10, SCHEDULE)
    np.testing.assert_allclose(plan.alpha_bars, SCHEDULE.plan(10).alpha_bars)
    np.testing.assert_allclose(plan.timesteps, SCHEDULE.plan(10).timesteps, atol=1e-6)
    with pytest.raises(ScheduleFitError, match="unknown heuristic"):
        heuristic_plan("quadratic", 10, SCHEDULE)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "not valid JSON"),
        ('{"format": "other", "version": 1}', "not a sagd.fitted_schedule"),
        ('{"format": "sagd.fitted_schedule", "version": 1}', "malformed"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_fitted_files_are_refused(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ScheduleFitError, match=match):
        load_fitted_plan(path, SCHEDULE)


def test_missing_file_and_bad_grid_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScheduleFitError, match="cannot read"):
        load_fitted_plan(tmp_path / "nope.json", SCHEDULE)
    doc = optimize_schedule(gaussian_spectrum_power_law(8, 8, -2.0), 3).to_dict()
    doc["alpha_bars"] = [0.2, 0.5, 0.1]  # not decreasing
    (tmp_path / "g.json").write_text(json.dumps(doc))
    with pytest.raises(ScheduleFitError, match="decreasing"):
        load_fitted_plan(tmp_path / "g.json", SCHEDULE)


def test_grid_outside_the_training_range_warns(caplog: pytest.LogCaptureFixture) -> None:
    inside = np.array([0.99, 0.5, 0.01])
    with caplog.at_level("WARNING"):
        plan_from_grid(inside, SCHEDULE)
    assert "outside" not in caplog.text
    with caplog.at_level("WARNING"):
        plan = plan_from_grid(np.array([0.999999, 0.5, 1e-6]), SCHEDULE)
    assert "2 of 3 ᾱ levels lie outside the schedule's training range" in caplog.text
    assert plan.timesteps[0] == SCHEDULE.num_train_timesteps - 1  # clamped model times
    assert plan.timesteps[-1] == 0


# --- a model fits its own schedule -----------------------------------------------------------


def _model(noise: NoiseSpec, with_spectrum: bool = True) -> TrainedModel:
    config = training_preset("tiny-test").model_copy(update={"noise": noise})
    meta: dict[str, object] = {"dataset_hash": f"test-{noise.describe()}-{with_spectrum}"}
    if with_spectrum:
        spec = _spectrum_with_mean(16)
        meta["spectrum"] = spec.to_dict()
    return TrainedModel(
        net=UNet(unet_preset("cpu-tiny", 1)),
        config=config,
        schedule=config.schedule.build(),
        meta=meta,
        device=torch.device("cpu"),
    )


def test_model_fits_its_own_schedule_and_caches_it() -> None:
    fm.clear_cache()
    model = _model(NoiseSpec(kind="plw", alpha=-0.5))
    plan = fm.fitted_plan_for_model(model, 6)
    assert len(plan) == 6 and np.all(np.diff(plan.alpha_bars) > 0)
    lo, hi = model.schedule.alpha_bars[-1], model.schedule.alpha_bars[0]
    assert np.all(plan.alpha_bars >= lo * (1 - 1e-9)) and np.all(plan.alpha_bars <= hi)
    fitted = fm.fitted_schedule_for_model(model, 6)
    assert fm.fitted_schedule_for_model(model, 6) is fitted  # cached
    assert fitted.loss_final <= fitted.loss_init
    # The start is the model's own plan, so the "before" loss is that plan's loss.
    problem = fm.FitProblem.build(fm.model_spectrum(model), model.config.noise, 16, 16, "w2")
    own = model.schedule.plan(6).alpha_bars[::-1]
    assert fitted.loss_init == pytest.approx(problem.loss(own, "ddim", "w2"), rel=1e-9)
    assert fm.fitted_schedule_for_model(model, 6, sampler="ddpm") is not fitted
    other = fm.fitted_schedule_for_model(model, 6, height=24, width=24)
    assert other.context["image_size"] == [24, 24]


def test_pixel_w2_is_whitened_w2_weighted_by_the_noise_power() -> None:
    spec = _spectrum_with_mean(16).without_mean()
    noise = NoiseSpec(kind="plw", alpha=-0.5)
    problem = fm.FitProblem.build(spec, noise, 16, 16, "w2")
    grid = linear_alpha_bars(5)
    from sagd_core.schedule_design import output_variance

    w2 = problem.noise_weights**2
    v_pixel = w2 * output_variance(grid, problem.whitened.lam)
    direct = float(np.sum(spec.multiplicity * (np.sqrt(v_pixel) - np.sqrt(spec.lam)) ** 2))
    assert problem.loss(grid, "ddim", "w2") == pytest.approx(direct, rel=1e-10)


def test_omitted_band_is_left_out_of_the_fit() -> None:
    band = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
    problem = fm.FitProblem.build(_spectrum_with_mean(16), NoiseSpec(omit=band), 16, 16, "w2")
    omitted = problem.noise_weights == 0
    assert omitted.any()
    assert np.all(problem.whitened.lam[:, omitted] == 0)


def test_model_without_saved_spectrum_estimates_it_from_its_data() -> None:
    fm.clear_cache()
    model = _model(NoiseSpec(), with_spectrum=False)
    spectrum = fm.model_spectrum(model)
    assert spectrum.num_samples > 100 and spectrum.height == model.config.data.image_size
    assert fm.model_spectrum(model) is spectrum


def test_bad_saved_spectrum_is_reported() -> None:
    fm.clear_cache()
    model = _model(NoiseSpec())
    model.meta["spectrum"] = {"format": "sagd.spectrum", "version": 1}
    model.meta["dataset_hash"] = "bad-spectrum"
    with pytest.raises(ScheduleFitError, match="saved spectrum is unusable"):
        fm.fitted_plan_for_model(model, 4)


# --- CLI -------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sagd")
    schedule_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_fit_writes_a_loadable_schedule_and_show_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.json"
    assert (
        _cli(
            [
                "schedule",
                "fit",
                "--data",
                "digits",
                "--image-size",
                "8",
                "--steps",
                "4",
                "--noise",
                '{"kind": "plw", "alpha": -0.5}',
                "-o",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "before (linear plan)" in text and "after (fitted)" in text and "cosine grid" in text
    fitted = FittedSchedule.from_json(out.read_text())
    assert fitted.num_steps == 4 and fitted.context["data"] == "digits"
    assert fitted.context["noise"]["kind"] == "plw"
    assert fitted.loss_final <= fitted.loss_init
    assert len(load_fitted_plan(out, SCHEDULE)) == 4

    assert _cli(["schedule", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "| 4 |" in shown and "model time" in shown


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="--steps"):
        _cli(["schedule", "fit", "--data", "digits", "--steps", "0", "-o", str(tmp_path / "a")])
    with pytest.raises(CliError, match="invalid --noise"):
        _cli(
            [
                "schedule",
                "fit",
                "--data",
                "digits",
                "--steps",
                "3",
                "--noise",
                '{"kind": "pink"}',
                "-o",
                str(tmp_path / "a"),
            ]
        )
    with pytest.raises(CliError, match="does not exist"):
        _cli(
            [
                "schedule",
                "fit",
                "--model",
                str(tmp_path / "none"),
                "--steps",
                "3",
                "-o",
                str(tmp_path / "a"),
            ]
        )
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CliError, match=r"not a sagd\.fitted_schedule"):
        _cli(["schedule", "show", str(tmp_path / "bad.json")])


# --- benchmark helpers -----------------------------------------------------------------------


def test_gaussian_bench_case_table_and_plots(tmp_path: Path) -> None:
    from sagd_core.bench import schedule_gaussian as gb
    from sagd_core.cli.bench_schedule import _plot_case

    case = gb.data_case("test", _spectrum_with_mean(8), NoiseSpec(kind="plw", alpha=-0.5))
    result = gb.run_case(case, [2, 4, 10])
    for sampler in ("ddim", "ddpm"):
        for n in (2, 4, 10):
            row = result.losses[sampler]
            assert row["optimized"][n] <= row["linear"][n] * (1 + 1e-9)
        hit = result.steps_to_match(sampler, 10)
        assert hit is None or hit <= 10
    table = gb.markdown_table(result, [2, 10])
    assert table.count("\n") == 3 and "DDPM optimized" in table and "**" in table
    paths = _plot_case(result, tmp_path)
    import cv2

    for path in paths:
        image = cv2.imread(str(path))
        assert image is not None and image.shape[2] == 3 and image.std() > 0


def test_model_bench_metrics_and_steps_to_match() -> None:
    from sagd_core.bench import schedule_model as mb

    rng = np.random.default_rng(0)
    ref_images = rng.standard_normal((200, 1, 8, 8)) * 0.3
    spectrum = estimate_spectrum(ref_images)
    mean = ref_images.mean(axis=0)
    same = rng.standard_normal((200, 1, 8, 8)) * 0.3
    louder = rng.standard_normal((200, 1, 8, 8)) * 0.6 + 0.2
    assert mb.gaussian_w2(same, spectrum, mean) < mb.gaussian_w2(louder, spectrum, mean)
    # louder: √v ≈ 2√λ on all 64 bins (W2² ≈ 64·0.09) plus a mean offset of 0.2 on 64 pixels.
    assert mb.gaussian_w2(louder, spectrum, mean) == pytest.approx(64 * 0.09 + 64 * 0.04, rel=0.2)

    result = mb.ModelResult("m", "ddim")
    result.metrics = {
        "linear": {10: {"fd": 5.0}, 50: {"fd": 2.0}},
        "cosine": {10: {"fd": 6.0}, 50: {"fd": 3.0}},
        "optimized": {5: {"fd": 4.0}, 10: {"fd": 1.9}, 20: {"fd": 1.5}},
    }
    assert result.best_heuristic("fd", 50) == ("linear", 2.0)
    assert result.steps_to_match("fd", 50) == 10
    table = mb.markdown_table(result, "fd")
    assert "| 10 | 5 | 6 | **1.9** |" in table and "| 5 |  |  | **4** |" in table
