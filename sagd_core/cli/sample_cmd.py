"""``sagd sample``: draw images from a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sagd_core.cli.common import CliError, add_command
from sagd_core.data import from_model_range, write_image


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "sample", _arguments, run)


def _arguments(p: argparse.ArgumentParser) -> None:
    """generate images from a trained model

    Generate images with DDIM or DDPM from a model directory, using the model's own forward
    noise for the prior and every step."""
    from sagd_core.samplers import SAMPLERS

    p.add_argument("--model", "-m", required=True, type=Path, help="model directory")
    p.add_argument("--out", "-o", required=True, type=Path, help="output folder (PNG files)")
    p.add_argument("--num", "-n", type=int, default=16, help="number of images")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="ddim")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM η (0 = deterministic)")
    p.add_argument(
        "--schedule",
        type=Path,
        help="fitted schedule JSON from 'sagd schedule fit' (replaces --steps)",
    )
    p.add_argument("--size", type=int, help="image size (default: the training size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")


def generate(
    model_dir: Path,
    *,
    num: int,
    steps: int,
    sampler: str,
    eta: float,
    size: int | None,
    seed: int,
    batch_size: int,
    device: str,
    progress: bool = False,
    schedule_file: Path | None = None,
) -> np.ndarray:
    """``(num, C, H, W)`` samples in [-1, 1]."""
    import torch

    from sagd_core.samplers import StepInfo, sample_ddim, sample_ddpm
    from sagd_core.schedule_design.plans import load_fitted_plan
    from sagd_core.training import load_trained_model, resolve_device

    dev = resolve_device(device)
    model = load_trained_model(model_dir, device=dev)
    h, w = (size, size) if size else tuple(model.meta.get("image_size", [16, 16]))
    noise_op = model.noise_op(int(h), int(w))
    eps_model = model.eps_predictor(noise_op)
    if schedule_file is not None:
        plan = load_fitted_plan(schedule_file, model.schedule)
    else:
        plan = model.schedule.plan(steps)
    gen = torch.Generator(device=dev).manual_seed(seed)
    out = []
    bar = tqdm(total=num * len(plan), desc="sample", unit="step", disable=not progress)

    def tick(_: StepInfo) -> None:
        bar.update(batch)

    done = 0
    while done < num:
        batch = min(batch_size, num - done)
        shape = (batch, model.channels, int(h), int(w))
        if sampler == "ddim":
            x = sample_ddim(eps_model, plan, noise_op, shape, generator=gen, callback=tick, eta=eta)
        else:
            x = sample_ddpm(eps_model, plan, noise_op, shape, generator=gen, callback=tick)
        out.append(x.clamp(-1, 1).cpu().numpy())
        done += batch
    bar.close()
    return np.concatenate(out)


def run(args: argparse.Namespace) -> int:
    if args.num < 1 or args.steps < 1:
        raise CliError("--num and --steps must be positive")
    if not args.model.is_dir():
        raise CliError(f"model directory {args.model} does not exist")
    images = generate(
        args.model,
        num=args.num,
        steps=args.steps,
        sampler=args.sampler,
        eta=args.eta,
        size=args.size,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress,
        schedule_file=args.schedule,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        hwc = from_model_range(img.transpose(1, 2, 0), clip=True)
        write_image(args.out / f"sample_{i:04d}.png", hwc)
    print(f"wrote {len(images)} images to {args.out}")
    return 0
