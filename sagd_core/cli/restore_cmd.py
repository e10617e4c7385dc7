"""``sagd restore``: restore one image or a folder with notch, DDNM or SAGD (DESIGN.md §4).

Writes, per input ``NAME.ext``: ``NAME.png`` (the restored image), ``NAME.report.json`` and, when
``--samples > 1``, ``NAME.uncertainty.png`` (per-pixel std scaled to its maximum, which the
report gives). Everything is written into a temporary folder beside ``--out`` and moved into place
only when every image succeeded: an error leaves nothing half-written. With ``--auto``, an image in
which no band is detected is written unchanged, with a warning in its report and on stderr.
``--method ddnm`` without ``--model`` uses the shipped default model (``sagd_core/models/default``,
a full-support RGB prior); ``--method sagd`` needs ``--model`` (a band model: without one it could
only delete the band, and the default model has no band role).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from sagd_core.cli.common import (
    CliError,
    add_command,
    field_option,
    image_inputs,
    read_json_arg,
)
from sagd_core.data import read_image, write_image
from sagd_core.data.image_files import write_bytes_atomic
from sagd_core.restore.request import (
    SCHEDULE_KINDS,
    RestoreOptions,
    RestoreRequest,
    RestoreSchedule,
)
from sagd_core.spectral import BandSpec, BandSpecError, parse_band_spec

if TYPE_CHECKING:
    from tqdm import tqdm

    from sagd_core.restore import ModelSet


def __getattr__(name: str) -> Any:
    """``ModelSet`` and ``restore`` load on first use: they import torch for the learned methods
    (the notch needs neither, nor ``sagd --help``)."""
    if name in ("ModelSet", "restore"):
        import sagd_core.restore

        return getattr(sagd_core.restore, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: RestoreOptions field -> the dest of the flag that sets it.
_OPTION_DESTS = {
    "method": "method",
    "notch_rolloff": "rolloff",
    "seed": "seed",
    "samples": "samples",
    "input_noise_std": "noise_std",
    "estimator": "estimator",
}


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "restore", _arguments, run)


def _arguments(p: argparse.ArgumentParser) -> None:
    """restore an image or a folder of images

    Remove corruption in known frequency bands. The band comes from --band (JSON or @file) or
    --auto (sagd analyze on each image). Models (--model DIR, repeatable) are used by role:
    omission, band, full."""
    """The restore options take their choices and defaults from :class:`RestoreOptions`."""
    p.add_argument("input", type=Path, help="an image file or a folder of images")
    p.add_argument("--out", "-o", required=True, type=Path, help="output folder")
    band = p.add_mutually_exclusive_group(required=True)
    band.add_argument("--band", help="band spec JSON, @file.json or a .json path")
    band.add_argument("--auto", action="store_true", help="detect the band with sagd analyze")
    p.add_argument("--method", **field_option(RestoreOptions, "method"))
    rolloff = field_option(RestoreOptions, "notch_rolloff", help="notch roll-off (method notch)")
    p.add_argument("--rolloff", **rolloff)
    p.add_argument(
        "--model",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="trained model directory (repeatable; role from its config)",
    )
    p.add_argument(
        "--steps",
        type=int,
        help="sampler steps (default: the restore default; with a schedule file, its N)",
    )
    p.add_argument(
        "--schedule",
        default=RestoreSchedule.model_fields["kind"].default,
        metavar="KIND|FILE",
        help="sampling schedule: model (the model's own, default), linear, cosine, "
        "fit (fitted to each model for N = --steps, cached), or a fitted schedule "
        "JSON from 'sagd schedule fit'",
    )
    p.add_argument("--seed", type=int, **field_option(RestoreOptions, "seed"))
    p.add_argument(
        "--samples",
        type=int,
        **field_option(RestoreOptions, "samples", help="> 1 also writes an uncertainty map"),
    )
    p.add_argument("--noise-std", type=float, **field_option(RestoreOptions, "input_noise_std"))
    p.add_argument("--estimator", **field_option(RestoreOptions, "estimator", help=None))
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--tile-size", type=int)  # default: restore()'s
    p.add_argument("--tile-overlap", type=int)
    p.add_argument("--bit-depth", type=int, choices=[8, 16], default=8)


def _band(args: argparse.Namespace) -> BandSpec | None:
    if args.auto:
        return None
    try:
        return parse_band_spec(read_json_arg(args.band, "--band"))
    except BandSpecError as exc:
        raise CliError(str(exc)) from exc


def _schedule(args: argparse.Namespace) -> RestoreSchedule:
    """``--schedule``: a kind name or a fitted schedule file (read once, cached on ``args``)."""
    cached = getattr(args, "_schedule_choice", None)
    if isinstance(cached, RestoreSchedule):
        return cached
    value = args.schedule
    if value in SCHEDULE_KINDS and value != "grid":
        choice = RestoreSchedule(kind=value)
    else:
        from sagd_core.schedule_design.fitted import ScheduleFitError
        from sagd_core.schedule_design.plans import load_fitted_schedule

        try:
            choice = RestoreSchedule.from_fitted(load_fitted_schedule(Path(value)))
        except ScheduleFitError as exc:
            kinds = ", ".join(k for k in SCHEDULE_KINDS if k != "grid")
            raise CliError(f"--schedule {value}: {exc} (pass one of {kinds} or a file)") from exc
    args._schedule_choice = choice
    return choice


def _request(args: argparse.Namespace, band: BandSpec) -> RestoreRequest:
    schedule = _schedule(args)
    fields: dict[str, Any] = {}
    steps = args.steps if args.steps is not None else schedule.num_steps
    if steps is not None:
        fields["steps"] = steps
    fields.update({field: getattr(args, dest) for field, dest in _OPTION_DESTS.items()})
    try:
        return RestoreRequest(band=band, schedule=schedule, **fields)
    except ValidationError as exc:
        raise CliError(
            f"invalid restore options: {exc.errors(include_url=False)[0]['msg']}"
        ) from exc


def _write_unchanged(
    file: Path,
    image: np.ndarray,
    analysis: dict[str, Any],
    args: argparse.Namespace,
    staging: Path,
) -> dict[str, Any]:
    """``--auto`` found nothing in ``file``: it is written unchanged, with a warning in its
    report and on stderr, and the other images go on."""
    warning = (
        f"{file}: --auto found no band standing above the spectrum's trend; the image is "
        "written unchanged (pass --band to restore it)"
    )
    print(f"warning: {warning}", file=sys.stderr)
    write_image(staging / f"{file.stem}.png", image, bit_depth=args.bit_depth)
    report: dict[str, Any] = {
        "input": str(file),
        "method": "none",
        "band": None,
        "warnings": [warning],
        "out_of_band_residual": 0.0,
        "timings": {"total_s": 0.0},
        "analysis": analysis,
    }
    write_bytes_atomic(staging / f"{file.stem}.report.json", json.dumps(report, indent=2).encode())
    return report


def _restore_one(
    file: Path,
    args: argparse.Namespace,
    band: BandSpec | None,
    models: ModelSet | None,
    staging: Path,
    bar: tqdm[Path],
) -> dict[str, Any]:
    image = read_image(file)
    analysis: dict[str, Any] | None = None
    if band is None:  # --auto
        from sagd_core.analysis.analyze import AnalyzeConfig, analyze_image

        found = analyze_image(image, AnalyzeConfig())
        analysis = found.to_dict()
        if found.spec is None:
            return _write_unchanged(file, image, analysis, args, staging)
        band = found.spec
    from sagd_core.restore import restore

    request = _request(args, band)
    bar.set_postfix_str(file.name)
    tiling = {"tile_size": args.tile_size, "tile_overlap": args.tile_overlap}
    tiling = {k: v for k, v in tiling.items() if v is not None}  # unset: restore()'s defaults
    result = restore(image, request, models, device=args.device, **tiling)
    stem = file.stem
    write_image(staging / f"{stem}.png", result.image, bit_depth=args.bit_depth)
    report = dict(result.report)
    report["input"] = str(file)
    if analysis is not None:
        report["analysis"] = analysis
    if result.uncertainty is not None:
        peak = float(result.uncertainty.max())
        scaled = result.uncertainty / peak if peak > 0 else result.uncertainty
        write_image(staging / f"{stem}.uncertainty.png", scaled, bit_depth=16)
        report["uncertainty_png_max_std"] = peak
    write_bytes_atomic(staging / f"{stem}.report.json", json.dumps(report, indent=2).encode())
    return report


def _check_models_given(args: argparse.Namespace) -> None:
    """Without ``--model``, ``ddnm`` uses the shipped default model (said on stderr); ``sagd``
    would only delete the band, so it is refused with how to get a band model, naming the
    default model and the method that uses it."""
    if args.model or args.method not in ("sagd", "ddnm"):
        return
    from sagd_core.models.default import DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAME

    if args.method == "ddnm":
        args.model = [DEFAULT_MODEL_DIR]
        print(
            f"--method ddnm without --model: using the shipped {DEFAULT_MODEL_NAME!r} model "
            f"({DEFAULT_MODEL_DIR})",
            file=sys.stderr,
        )
        return
    raise CliError(
        "--method sagd needs a trained band model directory (--model DIR, to fill the band); "
        "train one with `sagd train --recipe band --corruption NAME|JSON --data DATASET --out "
        "DIR` (or `sagd train --preset digits-band --out DIR`). The shipped "
        f"{DEFAULT_MODEL_NAME!r} model ({DEFAULT_MODEL_DIR}) is a full-support prior: "
        "--method ddnm uses it without --model. --method auto, classical and notch need no model"
    )


def run(args: argparse.Namespace) -> int:
    files = image_inputs(args.input)
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        raise CliError("input names collide once their suffixes are dropped (a.png and a.jpg)")
    band = _band(args)
    _schedule(args)  # a bad schedule file fails before any work
    if band is not None:
        _request(args, band)  # validate options before any work
    _check_models_given(args)
    models = None  # model-free methods
    if args.model:
        from sagd_core.restore import ModelSet

        models = ModelSet.load(args.model, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=args.out, prefix=".restore-"))
    summary = []
    try:
        from tqdm import tqdm

        with tqdm(files, desc="restore", unit="image", disable=args.no_progress) as bar:
            for file in bar:
                report = _restore_one(file, args, band, models, staging, bar)
                summary.append(
                    {
                        "input": str(file),
                        "method": report["method"],
                        "out_of_band_residual": report["out_of_band_residual"],
                        "total_s": report["timings"]["total_s"],
                    }
                )
        for item in sorted(staging.iterdir()):
            item.replace(args.out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    residuals = [s["out_of_band_residual"] for s in summary]
    unchanged = sum(s["method"] == "none" for s in summary)
    note = f" ({unchanged} written unchanged: no band detected)" if unchanged else ""
    print(
        f"restored {len(files)} image(s){note} into {args.out} with {args.method}; "
        f"max out-of-band residual {max(residuals):.2e}, "
        f"mean time {np.mean([s['total_s'] for s in summary]):.2f} s"
    )
    return 0
