"""``sagd corrupt``: write corrupted copies of a dataset, keeping the ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import ValidationError

from sagd_core.cli.common import CliError, add_command, read_json_arg
from sagd_core.data import apply_corruption, corruption_band_spec, save_dataset
from sagd_core.data.corruptions import parse_corruption


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "corrupt", _arguments, run)


def _arguments(p: argparse.ArgumentParser) -> None:
    """write corrupted copies of a dataset with the ground truth kept

    Apply a synthetic corruption (band_noise, periodic, oriented) to a built-in dataset or an
    image folder. Writes clean.npy, corrupted.npy, corruption.json, band_spec.json and PNG
    previews."""
    p.add_argument("--data", required=True, help="built-in dataset or image folder")
    p.add_argument("--corruption", required=True, help="corruption JSON or @file.json")
    p.add_argument("--out", "-o", required=True, type=Path)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--split", choices=["train", "test", "all"], default="test")
    p.add_argument("--count", type=int)
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from sagd_core.training.config import DataConfig
    from sagd_core.training.dataset import load_clean_images

    try:
        corruption = parse_corruption(read_json_arg(args.corruption, "--corruption"))
        data = DataConfig(
            source=args.data,
            image_size=args.image_size,
            channels=args.channels,
            split=args.split,
            count=args.count,
        )
    except (ValidationError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    clean = load_clean_images(data)
    corrupted = apply_corruption(clean, corruption, seed=args.seed)
    save_dataset(args.out, clean, corrupted, corruption)
    (args.out / "band_spec.json").write_text(json.dumps(corruption_band_spec(corruption), indent=2))
    print(f"wrote {len(clean)} clean/corrupted pairs ({corruption.kind}) to {args.out}")
    return 0
