"""``sagd schedule fit|show``: fit an N-step ᾱ grid to a data spectrum (DESIGN.md §5), inspect it.

``fit`` takes the spectrum of a dataset (``--data``: built-in name or image folder, with the
forward noise given by ``--noise``) or of a trained model (``--model``: its saved spectrum, noise
and schedule), fits ᾱ_1 > … > ᾱ_N for the chosen sampler and loss, prints the loss before (the
schedule's own N-step plan) and after, and writes a ``sagd.fitted_schedule`` JSON document that
:func:`sagd_core.schedule_design.load_fitted_plan` turns into a sampling plan.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from sagd_core.cli.common import CliError, add_command, add_sub_commands, read_json_arg
from sagd_core.spectral import NoiseSpec

if TYPE_CHECKING:
    from sagd_core.schedule_design import FittedSchedule, Spectrum
    from sagd_core.schedules import Schedule


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "schedule", _actions, common=False)


def _actions(p: argparse.ArgumentParser) -> None:
    """fit sampling schedules to a data spectrum

    Spectral schedule design (DESIGN.md §5)."""
    actions = add_sub_commands(p, "schedule_command", "ACTION")
    add_command(actions, "fit", _fit_arguments, run_fit)
    add_command(actions, "show", _show_arguments, run_show)


def _fit_arguments(fit: argparse.ArgumentParser) -> None:
    """fit an N-step schedule

    Fit ᾱ_1 > … > ᾱ_N minimising W2 (pixel space) or KL between the sampler's output and the
    data, both Gaussian with the data's per-frequency spectrum."""
    source = fit.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="built-in dataset (digits, lfw, natural) or image folder")
    source.add_argument("--model", "-m", type=Path, help="trained model directory")
    fit.add_argument("--steps", type=int, required=True, help="number of sampling steps N")
    fit.add_argument("--loss", choices=("w2", "kl"), default="w2")
    fit.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")
    fit.add_argument(
        "--noise",
        help="forward noise spec JSON (or @file) for --data; "
        "default white. A model brings its own.",
    )
    fit.add_argument(
        "--image-size",
        type=int,
        help="image size to fit for (default: 32 for --data, the training size for --model)",
    )
    fit.add_argument("--channels", type=int, default=1, help="channels of --data (1 or 3)")
    fit.add_argument("--count", type=int, help="use at most this many images of --data")
    fit.add_argument(
        "--schedule",
        choices=("linear", "cosine"),
        default="linear",
        help="training schedule assumed for --data (start grid, ᾱ range)",
    )
    fit.add_argument("--out", "-o", type=Path, required=True, help="schedule JSON to write")


def _show_arguments(show: argparse.ArgumentParser) -> None:
    """print a fitted schedule"""
    show.add_argument("path", type=Path, help="schedule JSON written by 'sagd schedule fit'")


def _noise(args: argparse.Namespace) -> NoiseSpec:
    if args.noise is None:
        return NoiseSpec()
    try:
        return NoiseSpec.model_validate(read_json_arg(args.noise, "--noise"))
    except ValidationError as exc:
        raise CliError(f"invalid --noise: {exc}") from exc


def _heuristic_lines(
    spectrum: Spectrum, noise: NoiseSpec, schedule: Schedule, fitted: FittedSchedule
) -> list[str]:
    from sagd_core.planning.for_model import FitProblem
    from sagd_core.schedule_design import HEURISTICS

    h, w = fitted.context.get("image_size", [spectrum.height, spectrum.width])
    problem = FitProblem.build(spectrum, noise, int(h), int(w), fitted.loss)
    lines = []
    for name, grid_fn in HEURISTICS.items():
        grid = grid_fn(fitted.num_steps, schedule.num_train_timesteps)
        value = problem.loss(grid, fitted.sampler, fitted.loss)
        lines.append(f"  {name + ' grid:':<22} {value:.6g}")
    return lines


def run_fit(args: argparse.Namespace) -> int:
    from sagd_core.planning.for_model import (
        fit_for_noise,
        fitted_schedule_for_model,
        model_spectrum,
        spectrum_from_data,
    )
    from sagd_core.schedule_design import ScheduleFitError
    from sagd_core.schedules import make_schedule

    if args.steps < 1:
        raise CliError("--steps must be at least 1")
    if args.image_size is not None and not 4 <= args.image_size <= 1024:
        raise CliError("--image-size must be in [4, 1024]")
    try:
        if args.model is not None:
            if args.noise is not None:
                raise CliError("--noise applies to --data; a model uses its own forward noise")
            if not args.model.is_dir():
                raise CliError(f"model directory {args.model} does not exist")
            from sagd_core.training import load_trained_model

            model = load_trained_model(args.model)
            fitted = fitted_schedule_for_model(
                model,
                args.steps,
                sampler=args.sampler,
                loss=args.loss,
                height=args.image_size,
                width=args.image_size,
            )
            spectrum, noise, schedule = model_spectrum(model), model.config.noise, model.schedule
            source = f"model {args.model}"
        else:
            from sagd_core.training.config import DataConfig

            size = args.image_size or 32
            data = DataConfig(
                source=args.data, image_size=size, channels=args.channels, count=args.count
            )
            spectrum, noise = spectrum_from_data(data), _noise(args)
            schedule = make_schedule(args.schedule)
            fitted = fit_for_noise(
                spectrum, noise, schedule, args.steps, sampler=args.sampler, loss=args.loss
            )
            fitted = replace(
                fitted,
                context={**fitted.context, "data": args.data, "num_images": spectrum.num_samples},
            )
            source = f"data {args.data} ({spectrum.num_samples} images)"
    except ValidationError as exc:
        raise CliError(f"invalid settings: {exc}") from exc
    except ScheduleFitError as exc:
        raise CliError(str(exc)) from exc

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(fitted.to_json(indent=1) + "\n")
    label = "W2² (pixel space)" if fitted.loss == "w2" else "KL"
    h, w = fitted.context["image_size"]
    print(
        f"fitted a {fitted.num_steps}-step {fitted.sampler.upper()} schedule to {source}, "
        f"{h}×{w}, noise {noise.describe()}"
    )
    print(f"{label}:")
    print(f"  {'before (' + schedule.name + ' plan):':<22} {fitted.loss_init:.6g}")
    for line in _heuristic_lines(spectrum, noise, schedule, fitted):
        print(line)
    ratio = fitted.loss_final / fitted.loss_init if fitted.loss_init > 0 else float("nan")
    print(
        f"  {'after (fitted):':<22} {fitted.loss_final:.6g}  (×{ratio:.3f}, {fitted.method}, "
        f"{fitted.iterations} iterations)"
    )
    print(f"wrote {args.out}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from sagd_core.schedule_design import ScheduleFitError, load_fitted_schedule

    try:
        fitted = load_fitted_schedule(args.path)
    except ScheduleFitError as exc:
        raise CliError(str(exc)) from exc
    ctx = fitted.context
    print(
        f"{args.path}: {fitted.num_steps}-step {fitted.sampler.upper()} schedule, loss "
        f"{fitted.loss}: {fitted.loss_init:.6g} -> {fitted.loss_final:.6g} ({fitted.method})"
    )
    for key in ("data", "num_images", "image_size", "noise", "schedule"):
        if key in ctx:
            print(f"  {key}: {ctx[key]}")
    schedule = _context_schedule(ctx)
    times = schedule.time_for_alpha_bar(fitted.alpha_bars) if schedule is not None else None
    print()
    print("| i | ᾱ_i | log-SNR | σ = √((1−ᾱ)/ᾱ) |" + (" model time |" if times is not None else ""))
    print("|---|---|---|---|" + ("---|" if times is not None else ""))
    log_snr = fitted.log_snr
    for i, ab in enumerate(fitted.alpha_bars):
        sigma = float(np.sqrt((1 - ab) / ab))
        row = f"| {i + 1} | {ab:.6g} | {log_snr[i]:.3f} | {sigma:.4g} |"
        if times is not None:
            row += f" {times[i]:.1f} |"
        print(row)
    print(f"(sampling starts at i = {fitted.num_steps} and ends at ᾱ_0 = {fitted.final_alpha_bar})")
    return 0


def _context_schedule(ctx: dict[str, object]) -> Schedule | None:
    from sagd_core.schedules import Schedule

    raw = ctx.get("schedule")
    if not isinstance(raw, dict):
        return None
    try:
        return Schedule.from_dict(raw)
    except ValueError:
        return None
