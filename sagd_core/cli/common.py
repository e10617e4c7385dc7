"""Helpers shared by CLI commands: logging setup, errors as exit codes, progress bars."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class CliError(Exception):
    """An expected failure: printed as one line, exit code 2, no traceback."""


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)


def read_json_arg(value: str, what: str) -> Any:
    """A JSON value given inline or as ``@file`` / a path to a ``.json`` file."""
    text = value
    path = Path(value[1:] if value.startswith("@") else value)
    if value.startswith("@") or (value.endswith(".json") and path.exists()):
        try:
            text = path.read_text()
        except OSError as exc:
            raise CliError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON ({exc.msg}); pass JSON or @file.json") from exc


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_device_options(parser: argparse.ArgumentParser, *, device: str = "auto") -> None:
    parser.add_argument("--device", default=device, help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def add_preset_options(parser: argparse.ArgumentParser, presets: Iterable[str], out: Path) -> None:
    """A preset benchmark's ``--preset`` (default quick), ``--out``, ``--device``, ``--threads``."""
    parser.add_argument("--preset", choices=sorted(presets), default="quick")
    parser.add_argument("--out", "-o", type=Path, default=out)
    add_device_options(parser)
