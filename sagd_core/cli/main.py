"""``sagd``: train, sample, corrupt, restore, analyze, fit schedules and benchmark."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sagd_core.cli import (
    analyze_cmd,
    bench,
    calibrate_cmd,
    corrupt_cmd,
    restore_cmd,
    sample_cmd,
    schedule_cmd,
    train_cmd,
)
from sagd_core.cli.common import EXIT_USAGE, CliError, setup_logging

COMMANDS = (
    train_cmd,
    calibrate_cmd,
    sample_cmd,
    corrupt_cmd,
    restore_cmd,
    analyze_cmd,
    schedule_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagd",
        description="Image restoration with spectrally anisotropic Gaussian diffusion (SAGD).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    bench.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"sagd {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"sagd {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sagd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
