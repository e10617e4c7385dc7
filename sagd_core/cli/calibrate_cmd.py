"""``sagd calibrate``: calibrate a band model's fill on held-out corrupted images (DESIGN.md §4.3).

The images are a folder of corrupted images (``--images``) or a built-in dataset split the model
did not train on, corrupted here (``--data --split --corruption``, corruption seed
:data:`sagd_core.calibration.fill.CORRUPTION_SEED`, as in ``sagd bench restore``). The band
is the model's own (its config).
:func:`sagd_core.calibration.fill.calibrate_fill_gain` writes ``fill_calibration.json`` beside
the checkpoint (atomically); ``sagd restore --model DIR`` then uses it. Every check runs before any
work: a refusal writes nothing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sagd_core.cli.common import (
    CliError,
    add_command,
    add_device_options,
    corruption_arg,
)
from sagd_core.data import BUILTIN_DATASETS, load_image_folder
from sagd_core.data.corruptions import Corruption, CorruptionError, parse_corruption

if TYPE_CHECKING:
    from sagd_core.restore.models import LoadedModel
    from sagd_core.spectral import BandSpec

logger = logging.getLogger(__name__)

SPLITS = ("train", "test", "all")
#: Splits of a built-in dataset that share images with each training split.
_OVERLAPS = {"train": {"train", "all"}, "test": {"test", "all"}, "all": set(SPLITS)}


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "calibrate", _arguments, run)


def _arguments(p: argparse.ArgumentParser) -> None:
    """calibrate a band model's fill on held-out corrupted images

    Calibrate the fill gain of a band model (and its corruption-to-noise correction) on
    held-out corrupted images, and write fill_calibration.json into the model directory.
    Images: a folder of corrupted images (--images) or a built-in dataset split the model did
    not train on, corrupted with --corruption."""
    from sagd_core.training.recipes import NAMED_CORRUPTIONS

    p.add_argument("model", type=Path, metavar="MODEL_DIR", help="band model directory")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="folder of held-out corrupted images (PNG, JPEG, TIFF)",
    )
    source.add_argument(
        "--data",
        metavar="DATASET",
        help=f"built-in dataset to corrupt ({', '.join(BUILTIN_DATASETS)}), at "
        "the model's image size",
    )
    p.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="split of --data (default test; must not overlap training)",
    )
    p.add_argument(
        "--corruption",
        help=f"corruption for --data: JSON (or @file) or a name ({', '.join(NAMED_CORRUPTIONS)})",
    )
    p.add_argument("--count", type=int, default=64, help="images to use (at least 2)")
    p.add_argument("--steps", type=int, default=25, help="sampler steps of the fill")
    p.add_argument("--samples", type=int, default=4, help="samples averaged per fill")
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument(
        "--corruption-shaped",
        action="store_true",
        help="the images' corruption is band-limited noise flat in the model's band (the model "
        "was trained on such images): also record its level and the one-call read's level "
        "(automatic when the model's training config names such a corruption)",
    )
    add_device_options(p, device="cpu")


def _check_options(args: argparse.Namespace) -> None:
    if args.count < 2:
        raise CliError(f"--count must be at least 2, got {args.count}")
    if args.steps < 1 or args.samples < 1:
        raise CliError("--steps and --samples must be at least 1")
    if args.seed < 0:
        raise CliError(f"--seed must be non-negative, got {args.seed}")
    if args.threads is not None and args.threads < 1:
        raise CliError(f"--threads must be at least 1, got {args.threads}")
    if args.images is not None and args.corruption:
        raise CliError("--corruption goes with --data; --images must already be corrupted")
    if args.data is not None and args.data not in BUILTIN_DATASETS:
        raise CliError(
            f"unknown dataset {args.data!r}; built-in datasets: "
            f"{', '.join(BUILTIN_DATASETS)} (for a folder use --images)"
        )
    if args.data is not None and not args.corruption:
        raise CliError("--data needs --corruption (a name or a corruption JSON)")


def _corruption(text: str) -> Corruption:
    try:
        return parse_corruption(corruption_arg(text))
    except (CorruptionError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def _band_model(directory: Path, device: str) -> tuple[LoadedModel, BandSpec]:
    from sagd_core.restore.models import load_model

    if not (directory / "config.json").is_file():
        raise CliError(f"{directory} is not a model directory (no config.json)")
    model = load_model(directory, device=device)
    if model.config.role != "band":
        raise CliError(
            f"{directory} is a {model.config.role!r} model; only a band model "
            "(sagd train --recipe band) has a fill to calibrate"
        )
    spec = model.config.band or model.config.noise.band
    if spec is None:
        raise CliError(f"{directory}: the band model's config names no band")
    return model, spec


def _check_held_out(model: LoadedModel, args: argparse.Namespace) -> None:
    """Refuse images the model was trained on, where its config tells."""
    data = model.config.data
    if args.data is not None:
        if data.source == args.data and args.split in _OVERLAPS[data.split]:
            raise CliError(
                f"the model was trained on the {data.source} {data.split} split; "
                f"--split {args.split} overlaps it (use --split test)"
            )
        return
    source = Path(data.source)
    if (
        data.source not in BUILTIN_DATASETS
        and source.exists()
        and source.resolve() == args.images.resolve()
    ):
        raise CliError(f"{args.images} is the model's training folder; give held-out images")


def _images(model: LoadedModel, args: argparse.Namespace) -> np.ndarray:
    """Held-out corrupted images, float64 ``(N, C, H, W)`` in the model range [-1, 1]."""
    channels = model.config.model.in_channels
    if args.images is not None:
        if not args.images.is_dir():
            raise CliError(f"--images {args.images} is not a folder")
        images = load_image_folder(args.images, max_images=args.count)
        if images.shape[1] != channels:
            raise CliError(
                f"{args.images} holds {images.shape[1]}-channel images but the model "
                f"takes {channels} channel(s)"
            )
    else:
        from sagd_core.calibration.fill import corrupted_builtin

        images = corrupted_builtin(
            args.data,
            _corruption(args.corruption),
            image_size=model.config.data.image_size,
            channels=channels,
            split=args.split,
            count=args.count,
        )
    if len(images) < 2:
        raise CliError(f"calibration needs at least 2 images, found {len(images)}")
    return images.astype(np.float64)


def _warn_band(model_band: BandSpec, args: argparse.Namespace) -> None:
    if args.corruption is None:
        return
    own = _corruption(args.corruption).band_spec()
    if own != model_band:
        logger.warning(
            "the corruption's band differs from the model's band; the fill is "
            "calibrated for the model's band"
        )


def run(args: argparse.Namespace) -> int:
    import torch

    from sagd_core.calibration.fill import calibrate_fill_gain
    from sagd_core.restore.models import CALIBRATION_FILE
    from sagd_core.training import resolve_device

    _check_options(args)
    if args.corruption:
        _corruption(args.corruption)  # a bad corruption fails before the model is read
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    model, spec = _band_model(args.model, device)
    _check_held_out(model, args)
    images = _images(model, args)
    _warn_band(spec, args)
    calib = calibrate_fill_gain(
        model,
        images,
        spec,
        steps=args.steps,
        samples=args.samples,
        seed=args.seed,
        directory=args.model,
        device=device,
        corruption_shaped=args.corruption_shaped,
    )
    print(
        f"calibrated the fill of {args.model} on {calib['images']} image(s) "
        f"({args.steps} steps, {args.samples} samples): gain {calib['gain']:.4f} "
        f"(raw {calib['raw_gain']:.4f}), corruption-to-noise ratio "
        f"{calib['corruption_ratio']:.4g} (measured {calib['measured_corruption_ratio']:.4g}), "
        f"read at ᾱ = {calib.get('read_alpha_bar', 0.1):.2g}, measured at "
        f"{calib['size'][0]}×{calib['size'][1]} (restorations of another size check the fill "
        "on a probe band instead of trusting this gain)"
    )
    if calib.get("corruption_shaped"):
        excess = calib.get("read_excess")
        print(
            f"corruption-shaped band model: corruption level s² = {calib['corruption_var']:.4g}; "
            + (
                f"one-call read at κ = {excess:g} (SURE)"
                if excess is not None
                else "no corruption measured, no one-call read level"
            )
        )
    if calib["gain"] == 0.0:
        print(
            "gain 0: the fill did not reduce the in-band error significantly on these images; "
            "SAGD will omit the band (a notch) with this model"
        )
    print(f"wrote {args.model / CALIBRATION_FILE}")
    return 0
