"""``sagd bench latency``: seconds for one 256×256 RGB SAGD restoration and the sampler overhead
over its network calls (:mod:`sagd_core.bench.latency`; issue target ≤ 3 s on 2 CPU cores at
the default steps, overhead ≤ 10 %)."""

from __future__ import annotations

import argparse
import json

from sagd_core.cli.common import CliError, add_command, field_option
from sagd_core.cli.environment import describe_environment
from sagd_core.restore.request import RestoreOptions


def register_bench(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "latency", _arguments, run, description=__doc__)


def _arguments(p: argparse.ArgumentParser) -> None:
    """restoration latency and sampler overhead"""
    from sagd_core.models import PRESET_NAMES

    p.add_argument("--unet", choices=PRESET_NAMES, default="cpu-tiny")
    p.add_argument("--size", type=int, default=256, help="image side (RGB)")
    p.add_argument(
        "--steps",
        type=int,
        action="append",
        help="sampler steps (repeatable; default: the restore default)",
    )
    p.add_argument(
        "--estimator",
        action="append",
        **field_option(
            RestoreOptions, "estimator", default=None, help="repeatable (default: mean)"
        ),
    )
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="also print the raw results as JSON")


def run(args: argparse.Namespace) -> int:
    import torch

    from sagd_core.bench.latency import markdown, measure_latency
    from sagd_core.training import resolve_device

    if not 16 <= args.size <= 4096 or args.rounds < 1 or args.threads < 1:
        raise CliError("need 16 ≤ --size ≤ 4096, --rounds ≥ 1, --threads ≥ 1")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(describe_environment(device))
    results = [
        measure_latency(
            unet=args.unet,
            size=args.size,
            steps=steps,
            estimator=estimator,
            samples=args.samples,
            device=str(device),
            rounds=args.rounds,
        )
        for estimator in args.estimator or ["mean"]
        for steps in args.steps or [None]
    ]
    print()
    print(markdown(results))
    print(
        f"\nnotch alone: {results[0].notch_s * 1e3:.1f} ms; rounds: {args.rounds} "
        "(medians; the bare call alternates with the restorations)"
    )
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    return 0
