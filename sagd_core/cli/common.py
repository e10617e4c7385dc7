"""Helpers shared by CLI commands: sub-command registration, shared flags, logging, errors."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

EXIT_USAGE = 2

Arguments = Callable[[argparse.ArgumentParser], None]


class CliError(Exception):
    """An expected failure: printed as one line, exit code 2, no traceback."""


class LazySubParsers(argparse._SubParsersAction):
    """Sub-commands whose options are added only once one is chosen on the command line.

    ``sagd --help`` lists every command from its name and help alone, and a command never runs
    the option code of the others, whose choices may come from torch-importing modules.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Arguments] = {}

    def defer(self, name: str, arguments: Arguments) -> None:
        self._pending[name] = arguments

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        arguments = self._pending.pop(values[0], None)
        if arguments is not None:
            arguments(self._name_parser_map[values[0]])
        super().__call__(parser, namespace, values, option_string)


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    arguments: Arguments,
    func: Callable[[argparse.Namespace], int] | None = None,
    *,
    common: bool = True,
    **parser_kwargs: Any,
) -> argparse.ArgumentParser:
    """``sub.add_parser(name, **parser_kwargs)`` running ``func``, with the options ``arguments``
    adds, then :func:`add_common` unless ``common`` is false; deferred until the command is
    chosen when ``sub`` is a :class:`LazySubParsers`.

    As in click, the docstring of ``arguments`` documents the command: its first line is the
    ``help`` listed by the parent's ``--help``, the paragraphs after it the ``description``
    (argparse re-wraps them), unless ``parser_kwargs`` gives them.
    """
    summary, _, details = (inspect.getdoc(arguments) or "").partition("\n\n")
    parser_kwargs.setdefault("help", summary or None)
    parser_kwargs.setdefault("description", details or None)
    parser = sub.add_parser(name, **parser_kwargs)
    if func is not None:
        parser.set_defaults(func=func)

    def add(p: argparse.ArgumentParser) -> None:
        arguments(p)
        if common:
            add_common(p)

    if isinstance(sub, LazySubParsers):
        sub.defer(name, add)
    else:
        add(parser)
    return parser


def add_scene_arguments(
    p: argparse.ArgumentParser, *, kinds: Iterable[str], out: Path, out_help: str
) -> None:
    """The options of the real-size benchmarks: image sides, corruption kinds, a quick run,
    the seed and the output folder."""
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="image sides")
    p.add_argument(
        "--kinds", nargs="+", default=None, help=f"corruptions (default: {' '.join(kinds)})"
    )
    p.add_argument("--quick", action="store_true", help="one photo and one synthetic scene")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=out, help=out_help)


def add_sub_commands(parser: argparse.ArgumentParser, dest: str, metavar: str) -> LazySubParsers:
    """A required sub-command slot whose commands add their options lazily."""
    sub = parser.add_subparsers(dest=dest, required=True, metavar=metavar, action=LazySubParsers)
    assert isinstance(sub, LazySubParsers)
    return sub


def field_option(model: type[BaseModel], field: str, **overrides: Any) -> dict[str, Any]:
    """``add_argument`` keywords declared once by a pydantic field: its ``default``, its
    ``choices`` (the values of a ``Literal``) and its ``help`` (the description); ``overrides``
    win."""
    info = model.model_fields[field]
    kwargs: dict[str, Any] = {"default": info.get_default(call_default_factory=True)}
    if get_origin(info.annotation) is Literal:
        kwargs["choices"] = list(get_args(info.annotation))
    if info.description:
        kwargs["help"] = info.description
    return {**kwargs, **overrides}


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


def corruption_arg(value: str) -> dict[str, Any]:
    """``--corruption``: a corruption name or its JSON (inline, ``@file`` or a ``.json`` path),
    resolved and validated by :func:`sagd_core.training.recipes.resolve_corruption`."""
    from sagd_core.data.corruptions import CorruptionError
    from sagd_core.training.recipes import resolve_corruption

    text = value.strip()
    json_like = text.startswith(("{", "@")) or text.endswith(".json")
    raw = read_json_arg(text, "--corruption") if json_like else text
    try:
        return resolve_corruption(raw)
    except (CorruptionError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def image_inputs(path: Path) -> list[Path]:
    """An image file, or the PNG, JPEG and TIFF images of a folder (at least one)."""
    from sagd_core.data import list_image_files

    if path.is_dir():
        files = list_image_files(path)
        if not files:
            raise CliError(f"{path} holds no PNG, JPEG or TIFF image")
        return files
    if not path.is_file():
        raise CliError(f"{path} does not exist")
    return [path]


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
