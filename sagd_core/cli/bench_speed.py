"""``sagd bench speed``: seconds of the classical tier per 512² RGB image on one core, per
corruption kind, against the classical-tier issue's budgets
(:mod:`sagd_core.bench.classical_speed`). Numpy only: torch is not imported."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sagd_core.cli.common import add_command
from sagd_core.cli.environment import describe_numpy_environment


def register_bench(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "speed", _arguments, run, description=__doc__)


def _arguments(p: argparse.ArgumentParser) -> None:
    """classical tier seconds per image on one core"""
    p.add_argument("--size", type=int, default=512, help="image side")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case (best is kept)")
    p.add_argument("--core", type=int, default=None, help="CPU to pin to (default: the last)")
    p.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")


def run(args: argparse.Namespace) -> int:
    from sagd_core.bench.classical_speed import markdown, pin_one_core, time_classical

    pinned = pin_one_core(args.core)
    print(describe_numpy_environment("the classical tier"))
    print(f"one core: {pinned}\n")
    rows = time_classical(args.size, channels=args.channels, repeats=args.repeats)
    print(
        f"{args.size}² {'RGB' if args.channels == 3 else 'gray'}, {rows[0]['scene']}, best of "
        f"{args.repeats} (wall seconds of the whole restore() call; CPU seconds of that run)\n"
    )
    print(markdown(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["met"] is not False for r in rows) else 1
