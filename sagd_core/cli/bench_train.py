"""``sagd bench train``: training-step time with SAGD noise versus white noise.

Same model, batch, data and process; the two variants alternate in rounds so drift (thermal,
other load) hits both equally. The figure is the ratio of median step times (target ≤ 1.03).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import TYPE_CHECKING

import numpy as np

from sagd_core.cli.common import add_command, add_device_options
from sagd_core.cli.environment import describe_environment

if TYPE_CHECKING:
    import torch

    from sagd_core.models import UNet
    from sagd_core.spectral.operator import SpectralNoise


def register_bench(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "train", _arguments, run, common=False)


def _arguments(p: argparse.ArgumentParser) -> None:
    """training step time, SAGD vs white noise"""
    from sagd_core.models import PRESET_NAMES

    p.add_argument("--unet", choices=PRESET_NAMES, default="cpu-small")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps-per-round", type=int, default=10)
    add_device_options(p)


def _step_times(
    net: UNet,
    opt: torch.optim.Optimizer,
    noise_op: SpectralNoise,
    x0: torch.Tensor,
    steps: int,
    project: bool,
    gen: torch.Generator,
) -> list[float]:
    import torch

    from sagd_core.diffusion import eps_loss
    from sagd_core.schedules import make_schedule

    schedule = make_schedule("linear")
    times = []
    for _ in range(steps):
        if x0.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = eps_loss(net, x0, schedule, noise_op, generator=gen, project_trusted=project).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if x0.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def run(args: argparse.Namespace) -> int:
    import torch

    from sagd_core.models import UNet, count_parameters, unet_preset
    from sagd_core.spectral import NoiseSpec, parse_band_spec
    from sagd_core.spectral.operator import SpectralNoise
    from sagd_core.training import resolve_device

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(describe_environment(device))
    size, batch = args.image_size, args.batch_size
    config = unet_preset(args.unet, 1)
    torch.manual_seed(0)
    net = UNet(config).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x0 = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    band = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
    variants = {
        "white": (SpectralNoise(NoiseSpec(), size, size, device=device), False),
        "sagd plw": (
            SpectralNoise(NoiseSpec(kind="plw", alpha=-0.5), size, size, device=device),
            False,
        ),
        "sagd omit+proj": (SpectralNoise(NoiseSpec(omit=band), size, size, device=device), True),
    }
    gen = torch.Generator(device=device).manual_seed(1)
    for op, project in variants.values():  # warm-up (allocator, kernels)
        _step_times(net, opt, op, x0, 2, project, gen)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, (op, project) in variants.items():
            times[name] += _step_times(net, opt, op, x0, args.steps_per_round, project, gen)
    base = statistics.median(times["white"])
    print(
        f"\nmodel {args.unet} ({count_parameters(net) / 1e6:.2f} M params), "
        f"batch {batch}, {size}×{size}, {args.rounds}×{args.steps_per_round} steps/variant, "
        f"device {device}\n"
    )
    print("| noise | median step (ms) | p90 step (ms) | images/s | ratio vs white |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        p90 = float(np.percentile(ts, 90))
        print(
            f"| {name} | {med * 1e3:.1f} | {p90 * 1e3:.1f} | {batch / med:.0f} | {med / base:.3f} |"
        )
    return 0
