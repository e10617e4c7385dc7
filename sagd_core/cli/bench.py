"""``sagd bench …``: reproducible benchmarks; each prints its environment first."""

from __future__ import annotations

import argparse

from sagd_core.cli import (
    bench_detection,
    bench_latency,
    bench_omission,
    bench_real,
    bench_restore,
    bench_schedule,
    bench_speed,
    bench_train,
)
from sagd_core.cli.common import add_command, add_sub_commands

BENCHES = (
    bench_train,
    bench_restore,
    bench_omission,
    bench_schedule,
    bench_latency,
    bench_real,
    bench_speed,
    bench_detection,
)


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "bench", _benches, common=False)


def _benches(p: argparse.ArgumentParser) -> None:
    """run a benchmark

    Benchmarks. Each prints the machine it ran on and a markdown table for
    docs/BENCHMARKS.md."""
    bench_sub = add_sub_commands(p, "bench", "BENCH")
    for module in BENCHES:
        module.register_bench(bench_sub)
