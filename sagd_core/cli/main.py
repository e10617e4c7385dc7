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
from sagd_core.cli.common import EXIT_USAGE, CliError, add_sub_commands, setup_logging

#: In ``sagd --help`` order. Each module's top level is torch-free and its options are added
#: only when its command is chosen, so ``sagd --help`` and the numpy-only commands stay light.
COMMANDS = (
    train_cmd,
    calibrate_cmd,
    sample_cmd,
    corrupt_cmd,
    restore_cmd,
    analyze_cmd,
    schedule_cmd,
    bench,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagd",
        description="Image restoration with spectrally anisotropic Gaussian diffusion (SAGD).",
    )
    sub = add_sub_commands(parser, "command", "COMMAND")
    for module in COMMANDS:
        module.register(sub)
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
