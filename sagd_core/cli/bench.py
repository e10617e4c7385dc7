"""``sagd bench …``: reproducible benchmarks; each prints its environment first."""

from __future__ import annotations

import argparse

from sagd_core.cli import (
    bench_latency,
    bench_omission,
    bench_restore,
    bench_schedule,
    bench_train,
)

BENCHES = (bench_train, bench_restore, bench_omission, bench_schedule, bench_latency)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run a benchmark",
        description="Benchmarks. Each prints "
        "the machine it ran on and a markdown table for docs/BENCHMARKS.md.",
    )
    bench_sub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for module in BENCHES:
        module.register_bench(bench_sub)
