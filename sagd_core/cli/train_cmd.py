"""``sagd train``: train a model from a preset, a config file, a corruption recipe, or flags.

``--recipe ROLE --corruption NAME|JSON --data DATASET`` builds the recipe of one corruption type
(:mod:`sagd_core.training.recipes`): ``omission`` and ``band`` models from the corrupted images
only, the isotropic ``standard`` baseline on the same corrupted images, and for comparison a
``full``-support model from the clean images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from tqdm import tqdm

from sagd_core.cli.common import CliError, add_command, corruption_arg, read_json_arg
from sagd_core.spectral import NoiseSpec, parse_band_spec
from sagd_core.spectral.bands import BandSpecError

if TYPE_CHECKING:
    from sagd_core.training import TrainConfig


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "train", _arguments, run)


def _arguments(p: argparse.ArgumentParser) -> None:
    """train a diffusion model

    Train a model. Start from --preset, --config (JSON) or --recipe ROLE --corruption
    NAME|JSON --data DATASET (the recipes for one corruption type: omission and band models
    from the corrupted images only, standard and full baselines) and override with flags. The
    output folder becomes a model directory (safetensors + JSON); re-running with the same
    config resumes."""
    from sagd_core.models import PRESET_NAMES
    from sagd_core.training import PRESETS
    from sagd_core.training.recipes import NAMED_CORRUPTIONS, ROLES

    p.add_argument("--out", "-o", type=Path, help="model directory to write (required to train)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        metavar="PRESET",
        help="named recipe: demo, tiny-test, digits-{omission,band,standard,full}, "
        "{digits,lfw,natural}-{" + ",".join(NAMED_CORRUPTIONS) + "}-{" + ",".join(ROLES) + "}",
    )
    p.add_argument("--config", help="TrainConfig as JSON or @file.json")
    p.add_argument(
        "--recipe",
        choices=ROLES,
        help="recipe for the corruption given by --corruption: omission (noise zero "
        "in the band) or band (noise only in the band), both trained on the corrupted "
        "images; standard (white noise, corrupted images); full (white noise, clean "
        "images, for DDNM)",
    )
    p.add_argument(
        "--band",
        help="band spec JSON (or @file) the --recipe model is built for "
        "(default: the corruption's own band)",
    )
    p.add_argument("--data", help="built-in dataset (digits, lfw, natural) or image folder")
    p.add_argument("--image-size", type=int)
    p.add_argument("--channels", type=int)
    p.add_argument(
        "--corruption",
        help="synthetic corruption applied to the data: JSON (or @file) "
        f"or a name ({', '.join(NAMED_CORRUPTIONS)})",
    )
    p.add_argument(
        "--declared-corruption",
        choices=["noise"],
        help="the --data images are already corrupted by noise flat in the --band (nothing is "
        "applied): trains a band model on them with forward noise of that shape, which auto and "
        "sagd then read in one call (docs/DESIGN.md §4.3)",
    )
    p.add_argument(
        "--noise", help='noise spec JSON (or @file), e.g. \'{"kind": "plw", "alpha": -0.5}\''
    )
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


def _from_recipe(args: argparse.Namespace) -> dict[str, Any]:
    from sagd_core.training.presets import PRESET_SIZES
    from sagd_core.training.recipes import corruption_recipes

    if args.preset or args.config:
        raise CliError("give --recipe, --preset or --config, not several")
    if args.noise or args.omit:
        raise CliError("--recipe sets the forward noise itself; drop --noise/--omit")
    if not args.corruption:
        raise CliError("--recipe needs --corruption (a name or a corruption JSON)")
    source = args.data or "digits"
    band = None
    if args.band:
        try:
            band = parse_band_spec(read_json_arg(args.band, "--band"))
        except BandSpecError as exc:
            raise CliError(str(exc)) from exc
    steps = 3000 if args.steps is None else args.steps
    try:
        config = corruption_recipes(
            corruption_arg(args.corruption),
            source=source,
            image_size=args.image_size or PRESET_SIZES.get(source, 32),
            channels=args.channels or 1,
            unet=args.unet or "cpu-small",
            band=band,
            roles=(args.recipe,),
            steps=steps,
            batch_size=64 if args.batch_size is None else args.batch_size,
            lr=2e-3 if args.lr is None else args.lr,
            seed=args.seed or 0,
            device=args.device or "auto",
            checkpoint_every=max(steps // 4, 1),
        )[args.recipe]
    except (ValidationError, ValueError) as exc:
        raise CliError(f"invalid recipe: {exc}") from exc
    return config.model_dump(mode="json")


def _base(args: argparse.Namespace) -> dict[str, Any]:
    from sagd_core.training import training_preset

    if args.recipe:
        return _from_recipe(args)
    if args.band and not args.declared_corruption:
        raise CliError(
            "--band goes with --recipe or --declared-corruption (use --omit for an omission model)"
        )
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


def _declared(args: argparse.Namespace, cfg: dict[str, Any]) -> None:
    """``--declared-corruption noise --band BAND``: a band model (forward noise flat in the band)
    for images that already hold noise there."""
    if args.recipe or args.corruption or args.noise or args.omit:
        raise CliError(
            "--declared-corruption describes images that are already corrupted: drop "
            "--recipe/--corruption/--noise/--omit (it sets the band model's noise itself)"
        )
    if not args.band:
        raise CliError("--declared-corruption needs --band (the band the images' noise lies in)")
    try:
        band = parse_band_spec(read_json_arg(args.band, "--band"))
    except BandSpecError as exc:
        raise CliError(str(exc)) from exc
    cfg["noise"] = NoiseSpec(kind="band", band=band).model_dump(mode="json")
    cfg["band"] = band.model_dump(mode="json")
    cfg["role"] = "band"


def build_config(args: argparse.Namespace) -> TrainConfig:
    from sagd_core.models import unet_preset
    from sagd_core.training import TrainConfig

    cfg = _base(args)
    data = dict(cfg.get("data", {}))
    for key, value in (
        ("source", args.data),
        ("image_size", args.image_size),
        ("channels", args.channels),
    ):
        if value is not None:
            data[key] = value
    if args.corruption and not args.recipe:  # a recipe placed it (only on corrupted data)
        data["corruption"] = corruption_arg(args.corruption)
    if args.declared_corruption:
        _declared(args, cfg)
        data.pop("corruption", None)  # a preset's synthetic corruption: these images have theirs
        data["declared_corruption"] = args.declared_corruption
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
    for key, value in (
        ("steps", args.steps),
        ("batch_size", args.batch_size),
        ("lr", args.lr),
        ("seed", args.seed),
        ("device", args.device),
    ):
        if value is not None:
            cfg[key] = value
    if args.bf16:
        cfg["bf16"] = True
    try:
        return TrainConfig.model_validate(cfg)
    except ValidationError as exc:
        raise CliError(f"invalid training config: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    from sagd_core.training import TrainProgress, train

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
    print(
        f"trained {result.steps} steps in {result.seconds:.1f} s, final loss "
        f"{result.final_loss:.4f}; model written to {result.directory}"
    )
    return 0
