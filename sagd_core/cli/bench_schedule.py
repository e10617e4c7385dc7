"""``sagd bench schedule``: heuristic versus fitted sampling schedules (DESIGN.md §5).

(a) Gaussian data, closed form: pixel-space W2² of DDIM and DDPM at N steps for the linear plan,
    the cosine grid and the fitted grid, on a 32×32 ``λ ∝ r⁻²`` spectrum and on the digits
    spectrum, white and shaped (plw) noise; PNG plots of the ᾱ grids, the transfer (generated /
    data variance per radius) and W2² versus N.
(b) Trained models (``--model DIR``, repeatable): sample quality versus N per schedule
    (:mod:`sagd_core.bench.schedule_model`), and the N at which the fitted schedule reaches
    the best heuristic's quality at the reference N (50); band models (``--restore-model DIR``,
    repeatable): restoration PSNR of SAGD band fills on held-out images versus N per schedule
    (:mod:`sagd_core.bench.schedule_restore`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sagd_core.bench.plot import Series, line_chart, save_png, tile
from sagd_core.cli.common import CliError, add_command
from sagd_core.cli.environment import describe_environment
from sagd_core.spectral import NoiseSpec

if TYPE_CHECKING:
    from sagd_core.bench import schedule_gaussian as gb
    from sagd_core.bench import schedule_model as mb

TABLE_STEPS = (5, 10, 20, 50)
FITTED_STEPS = (3, 5, 7, 10, 13, 17, 20, 50)
DENSE_STEPS = (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 25, 30, 40, 50)
PLOT_STEPS = 10


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        msg = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from exc
    if not values or any(not 1 <= v <= 1000 for v in values):
        raise argparse.ArgumentTypeError("step counts must be in [1, 1000]")
    return values


def _seed_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("seeds must be non-negative integers")
    return values


def _add_step_counts(
    p: argparse.ArgumentParser, flag: str, help_text: str, default: tuple[int, ...] = TABLE_STEPS
) -> None:
    """An option taking a comma-separated list of step counts N."""
    p.add_argument(flag, type=_int_list, default=list(default), help=help_text)


def register_bench(sub: argparse._SubParsersAction) -> None:
    add_command(
        sub,
        "schedule",
        _arguments,
        run,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _arguments(p: argparse.ArgumentParser) -> None:
    """heuristic vs fitted sampling schedules"""
    p.add_argument("--out", type=Path, default=Path("bench-out/schedule"), help="PNG folder")
    p.add_argument("--skip-gaussian", action="store_true", help="skip part (a)")
    p.add_argument(
        "--model",
        "-m",
        type=Path,
        action="append",
        default=[],
        help="trained model directory for part (b); repeatable",
    )
    p.add_argument(
        "--model-sampler",
        choices=("ddim", "ddpm"),
        action="append",
        help="sampler(s) for part (b) (default ddim)",
    )
    _add_step_counts(p, "--heuristic-steps", "N for the linear and cosine schedules in part (b)")
    _add_step_counts(p, "--optimized-steps", "N for the fitted schedule in part (b)", FITTED_STEPS)
    p.add_argument(
        "--reference-steps",
        type=int,
        default=50,
        help="the heuristics' N whose quality the fitted schedule must reach",
    )
    p.add_argument("--num-samples", type=int, default=512, help="images per (schedule, N)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--restore-model",
        type=Path,
        action="append",
        default=[],
        help="band model directory for the restoration part of (b); repeatable",
    )
    _add_step_counts(p, "--restore-steps", "N for every schedule in the restoration part")
    p.add_argument("--restore-images", type=int, default=32, help="held-out images per model")
    p.add_argument(
        "--restore-seeds",
        type=_seed_list,
        default=[0, 1],
        help="restoration seeds (PSNR averaged over them)",
    )
    p.add_argument("--restore-samples", type=int, default=1, help="samples per restoration")
    p.add_argument(
        "--restore-read-alpha-bar",
        type=float,
        action="append",
        help="band fill read level(s) for every schedule (each ≥ 0.1; default: the "
        "first level at or above 0.1); repeat to compare",
    )
    p.add_argument(
        "--restore-estimator",
        choices=("mean", "sample"),
        action="append",
        help="restoration estimator(s) (default mean, the restore default)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# --- part (a) ------------------------------------------------------------------------------


def _gaussian_cases() -> list[gb.GaussianCase]:
    from sagd_core.bench import schedule_gaussian as gb
    from sagd_core.data import load_builtin
    from sagd_core.schedule_design.spectrum import estimate_spectrum

    plw = NoiseSpec(kind="plw", alpha=-0.5)
    digits = estimate_spectrum(load_builtin("digits", image_size=16))
    return [
        gb.power_law_case(NoiseSpec()),
        gb.power_law_case(plw),
        gb.data_case("digits", digits, NoiseSpec()),
        gb.data_case("digits", digits, plw),
    ]


def _plot_case(result: gb.CaseResult, out: Path) -> list[Path]:
    from sagd_core.bench import schedule_gaussian as gb
    from sagd_core.schedule_design.heuristics import cosine_alpha_bars
    from sagd_core.schedules import make_schedule

    n = PLOT_STEPS
    schedule = make_schedule("linear")
    grids = {
        "linear": schedule.plan(n).alpha_bars[::-1],
        "cosine": cosine_alpha_bars(n),
        **{f"optimized {s}": result.fits[s][n].alpha_bars for s in result.fits},
    }
    frac = (np.arange(n) + 1) / n
    curves = [Series(k, frac, np.log(g) - np.log1p(-g)) for k, g in grids.items()]
    slug = _slug(result.case.name)
    paths = [out / f"alpha_bars_{slug}.png"]
    save_png(
        paths[0],
        line_chart(
            curves,
            title=f"{n}-step grids: {result.case.name}",
            xlabel="i / N",
            ylabel="log-SNR log(a/(1-a))",
        ),
    )
    panels = []
    for sampler in result.fits:
        series = []
        for name in ("linear", "cosine", f"optimized {sampler}"):
            r, ratio = gb.radial_ratio(result, sampler, grids[name])
            series.append(Series(name, r, ratio))
        panels.append(
            line_chart(
                series,
                title=f"{sampler.upper()} N={n}: generated/data variance",
                xlabel="radius (cycles/pixel)",
                ylabel="v / lambda",
                logy=True,
            )
        )
    paths.append(out / f"transfer_{slug}.png")
    save_png(paths[1], tile(panels, cols=2))
    loss_series = [
        Series(
            f"{sampler} {name}",
            np.array(result.steps, float),
            np.array([result.losses[sampler][name][k] for k in result.steps]),
        )
        for sampler in result.losses
        for name in gb.SCHEDULE_NAMES
    ]
    paths.append(out / f"w2_vs_steps_{slug}.png")
    save_png(
        paths[2],
        line_chart(
            loss_series,
            title=f"W2^2 vs N: {result.case.name}",
            xlabel="N steps",
            ylabel="W2^2 (pixel)",
            logx=True,
            logy=True,
        ),
    )
    return paths


def run_gaussian(args: argparse.Namespace) -> None:
    from sagd_core.bench import schedule_gaussian as gb

    print("\n## (a) Gaussian data, closed form (pixel-space W2², lower is better)\n")
    print(
        "Linear = the linear schedule's N-step plan (T = 1000, leading spacing); cosine = the "
        "cosine grid; optimized = fitted to that sampler (SLSQP, ᾱ within the linear "
        "schedule's range, data mean counted). Best per sampler and N in bold.\n"
    )
    for case in _gaussian_cases():
        result = gb.run_case(case, sorted(set(DENSE_STEPS) | set(TABLE_STEPS)))
        print(f"### {case.name}\n")
        print(gb.markdown_table(result, TABLE_STEPS))
        print()
        ref = max(TABLE_STEPS)
        for sampler in result.losses:
            best, value = result.best_heuristic(sampler, ref)
            hit = result.steps_to_match(sampler, ref)
            shown = f"N = {hit}" if hit is not None else f"no N ≤ {max(result.steps)}"
            print(
                f"- {sampler.upper()}: optimized reaches the best heuristic's {ref}-step W2² "
                f"({value:.4g}, {best}) at {shown}."
            )
        paths = _plot_case(result, args.out)
        print(f"- plots: {', '.join(str(p) for p in paths)}\n")


# --- part (b) ------------------------------------------------------------------------------


def _plot_model(result: mb.ModelResult, out: Path) -> Path:
    from sagd_core.bench import schedule_model as mb

    panels = []
    for metric in mb.METRICS:
        if not all(metric in m for ms in result.metrics.values() for m in ms.values()):
            continue
        series = [
            Series(s, np.array(sorted(ms), float), np.array([ms[k][metric] for k in sorted(ms)]))
            for s, ms in result.metrics.items()
        ]
        panels.append(
            line_chart(
                series,
                title=f"{result.name} {result.sampler}: {metric}",
                xlabel="N steps",
                ylabel=metric,
                logx=True,
            )
        )
    path = out / f"quality_{_slug(result.name)}_{result.sampler}.png"
    save_png(path, tile(panels, cols=2))
    return path


def run_models(args: argparse.Namespace) -> None:
    from sagd_core.bench import schedule_model as mb
    from sagd_core.training import load_trained_model

    samplers = args.model_sampler or ["ddim"]
    print("\n## (b) Trained models: sample quality vs N (lower is better)\n")
    print(
        f"{args.num_samples} samples per (schedule, N), same seeds for every schedule; "
        "reference: held-out images (test split) of each model's own data config. fd = "
        "Fréchet distance in the digits classifier's features, fd_clean = the same against "
        "clean held-out digits (informational: for a model trained on corrupted digits it "
        "grows as samples approach the corrupted data), spec_db = radial power spectrum RMS "
        "distance (dB), gauss_w2 = W2² between diagonal-Fourier Gaussian fits. 'floor' = "
        "training images vs the same held-out images.\n"
    )
    for directory in args.model:
        if not directory.is_dir():
            raise CliError(f"model directory {directory} does not exist")
        model = load_trained_model(directory, device=args.device)
        ref = mb.reference_for(model)
        steps = {
            "linear": args.heuristic_steps,
            "cosine": args.heuristic_steps,
            "optimized": args.optimized_steps,
        }
        for sampler in samplers:
            result = mb.evaluate_model(
                model,
                str(directory),
                steps,
                sampler=sampler,
                num=args.num_samples,
                seed=args.seed,
                batch_size=args.batch_size,
                reference=ref,
                progress=None
                if args.no_progress
                else (lambda msg: print(f"  … {msg}", flush=True)),
            )
            cfg = model.config
            print(
                f"\n### {directory} ({cfg.role}, noise {cfg.noise.describe()}, "
                f"{model.meta.get('step', '?')} training steps, {cfg.data.source} "
                f"{cfg.data.image_size}px), {sampler.upper()}, {result.seconds:.0f} s\n"
            )
            print("floor: " + ", ".join(f"{k} {v:.4g}" for k, v in result.floor.items()) + "\n")
            predicted = mb.ModelResult(
                result.name, sampler, metrics=mb.predicted_losses(model, steps, sampler)
            )
            print(
                "Gaussian-model prediction (closed-form pixel W2² on the model's data "
                "spectrum, for comparison with gauss_w2):\n"
            )
            print(mb.markdown_table(predicted, "predicted"))
            print()
            for metric in mb.METRICS:
                if metric not in result.floor:
                    continue
                print(f"{metric}:\n")
                print(mb.markdown_table(result, metric))
                print()
            for metric in mb.QUALITY_METRICS:
                if metric not in result.floor or args.reference_steps not in steps["linear"]:
                    continue
                best, value = result.best_heuristic(metric, args.reference_steps)
                hit = result.steps_to_match(metric, args.reference_steps)
                target = args.reference_steps // 3
                if hit is None:
                    verdict = "not reached at any tested N (target missed)"
                else:
                    met = "meets" if hit <= target else "misses"
                    verdict = f"reached at N = {hit} ({met} the ≤ {target}-step target)"
                print(
                    f"- {metric}: best heuristic at {args.reference_steps} steps = {best} "
                    f"({value:.4g}); optimized: {verdict}."
                )
            print(f"- plot: {_plot_model(result, args.out)}")


def run_restore_models(args: argparse.Namespace) -> None:
    from sagd_core.bench import schedule_restore as rb
    from sagd_core.restore import load_model

    print("\n## (b) Trained models: restoration PSNR vs N (higher is better)\n")
    print(
        f"SAGD band fill of {args.restore_images} held-out images of each band model's own "
        "data config (test split, corrupted like its training data), PSNR (dB) against the "
        f"clean images, mean over seeds {args.restore_seeds}, {args.restore_samples} "
        "sample(s) per restoration, `sagd restore --steps N --schedule model|cosine|fit`. "
        "In brackets: network calls per restoration (the posterior-mean fill stops at the "
        "first level with ᾱ ≥ 0.1, unless a read level is given). linear = the model's own "
        "schedule; optimized = fitted to the model (band models: the fill chain, in-band "
        "W2 at the read level).\n"
    )
    steps = {name: args.restore_steps for name in rb.SCHEDULES}
    for directory in args.restore_model:
        if not directory.is_dir():
            raise CliError(f"model directory {directory} does not exist")
        model = load_model(directory, device=args.device)
        settings = [
            (e, r)
            for e in args.restore_estimator or ["mean"]
            for r in args.restore_read_alpha_bar or [None]
        ]
        for estimator, read in settings:
            curve = rb.restore_curve(
                model,
                str(directory),
                steps,
                images=args.restore_images,
                seeds=args.restore_seeds,
                samples=args.restore_samples,
                estimator=estimator,
                device=args.device,
                read_alpha_bar=read,
                progress=None
                if args.no_progress
                else (lambda msg: print(f"  … {msg}", flush=True)),
            )
            calib = model.meta.get("fill_calibration") or {}
            where = "first level ≥ 0.1" if read is None else f"ᾱ = {read:g}"
            print(
                f"\n### {directory} (data {model.config.data.source} "
                f"{model.config.data.image_size}px, fill gain {calib.get('gain', 1.0):.3g}), "
                f"estimator {estimator}, read at {where}, "
                f"{curve.images} images, {curve.seconds:.0f} s\n"
            )
            print(rb.markdown_table(curve))
            print()
            for line in rb.verdicts(curve, args.reference_steps):
                print(line)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.num_samples < 2 or args.batch_size < 1:
        raise CliError("--num-samples must be ≥ 2 and --batch-size ≥ 1")
    if args.restore_images < 1 or args.restore_samples < 1:
        raise CliError("--restore-images and --restore-samples must be ≥ 1")
    if any(not 0.1 <= r < 1 for r in args.restore_read_alpha_bar or []):
        raise CliError("--restore-read-alpha-bar must lie in [0.1, 1)")
    if args.skip_gaussian and not args.model and not args.restore_model:
        raise CliError("nothing to do: --skip-gaussian without --model or --restore-model")
    if args.threads is not None:
        if args.threads < 1:
            raise CliError("--threads must be ≥ 1")
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(describe_environment(device))
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.skip_gaussian:
        run_gaussian(args)
    if args.model:
        run_models(args)
    if args.restore_model:
        run_restore_models(args)
    return 0
