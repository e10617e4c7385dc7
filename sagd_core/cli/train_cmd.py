"""``sagd train``: train a model from a preset, a config file, or flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from sagd_core.cli.common import CliError, add_common, read_json_arg
from sagd_core.models import PRESET_NAMES, unet_preset
from sagd_core.spectral import NoiseSpec, parse_band_spec
from sagd_core.spectral.bands import BandSpecError
from sagd_core.training import PRESETS, TrainConfig, TrainProgress, train, training_preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a diffusion model",
        description="Train a model. Start from --preset or --config (JSON) and override with "
        "flags. The output folder becomes a model directory (safetensors + JSON); re-running "
        "with the same config resumes.",
    )
    p.add_argument("--out", "-o", type=Path, help="model directory to write (required to train)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="named recipe")
    p.add_argument("--config", help="TrainConfig as JSON or @file.json")
    p.add_argument("--data", help="built-in dataset (digits, lfw, natural) or image folder")
    p.add_argument("--image-size", type=int)
    p.add_argument("--channels", type=int)
    p.add_argument("--corruption", help="synthetic corruption JSON (or @file) applied to the data")
    p.add_argument("--noise", help="noise spec JSON (or @file), e.g. '{\"kind\": \"plw\", "
                   "\"alpha\": -0.5}'")
    p.add_argument("--omit", help="band spec JSON (or @file): zero forward noise in these bands")
    p.add_argument("--unet", choices=PRESET_NAMES, help="U-Net preset")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out exists")
    p.add_argument("--print-config", action="store_true", help="print the config and exit")
    add_common(p)
    p.set_defaults(func=run)


def _base(args: argparse.Namespace) -> dict[str, Any]:
    if args.preset and args.config:
        raise CliError("give --preset or --config, not both")
    if args.config:
        raw = read_json_arg(args.config, "--config")
        if not isinstance(raw, dict):
            raise CliError("--config must be a JSON object")
        return raw
    if args.preset:
        return training_preset(args.preset).model_dump(mode="json")
    return training_preset("digits-standard").model_dump(mode="json")


def build_config(args: argparse.Namespace) -> TrainConfig:
    cfg = _base(args)
    data = dict(cfg.get("data", {}))
    for key, value in (("source", args.data), ("image_size", args.image_size),
                       ("channels", args.channels)):
        if value is not None:
            data[key] = value
    if args.corruption:
        data["corruption"] = read_json_arg(args.corruption, "--corruption")
    cfg["data"] = data
    channels = int(data.get("channels", 1))
    if args.unet:
        cfg["model"] = unet_preset(args.unet, channels).model_dump(mode="json")
    elif "model" in cfg:
        cfg["model"] = {**cfg["model"], "in_channels": channels}
    try:
        if args.noise:
            noise = NoiseSpec.model_validate(read_json_arg(args.noise, "--noise"))
            cfg["noise"] = noise.model_dump(mode="json")
        if args.omit:
            omit = parse_band_spec(read_json_arg(args.omit, "--omit"))
            cfg["noise"] = {**cfg.get("noise", {}), "omit": omit.model_dump(mode="json")}
            cfg["band"] = omit.model_dump(mode="json")
            cfg.setdefault("role", "omission")
    except (BandSpecError, ValidationError) as exc:
        raise CliError(str(exc)) from exc
    for key, value in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr),
                       ("seed", args.seed), ("device", args.device)):
        if value is not None:
            cfg[key] = value
    if args.bf16:
        cfg["bf16"] = True
    try:
        return TrainConfig.model_validate(cfg)
    except ValidationError as exc:
        raise CliError(f"invalid training config: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.print_config:
        print(json.dumps(config.model_dump(mode="json"), indent=2))
        return 0
    if args.out is None:
        raise CliError("--out is required (the model directory to write)")
    bar = tqdm(total=config.steps, desc="train", unit="step", disable=args.no_progress)

    def on_progress(p: TrainProgress) -> None:
        bar.n = p.step
        bar.set_postfix(loss=f"{p.loss_avg:.4f}", img_s=f"{p.images_per_s:.0f}", refresh=False)
        bar.refresh()

    try:
        result = train(config, args.out, progress=on_progress, resume=not args.no_resume)
    finally:
        bar.close()
    print(f"trained {result.steps} steps in {result.seconds:.1f} s, final loss "
          f"{result.final_loss:.4f}; model written to {result.directory}")
    return 0
