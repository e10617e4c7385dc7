"""Checkpoint directories: safetensors tensor groups + JSON config + JSON metadata. No pickle.

Layout of a checkpoint directory::

    <group>.safetensors   one per tensor group ("model", "ema", "optimizer", ...)
    config.json           what is needed to rebuild the objects (e.g. a UNetConfig dump)
    meta.json             provenance: band spec, noise, schedule, data hash, step, ...

Writes are atomic at the directory level: everything is written into a hidden temporary sibling
directory, flushed, then renamed into place, so a crash never leaves a half-written checkpoint
under the final name. Loading treats the directory as untrusted input and raises
``CheckpointError`` (a ``ValueError``) with a readable message for anything malformed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = [
    "CONFIG_FILE",
    "META_FILE",
    "Checkpoint",
    "CheckpointError",
    "list_groups",
    "load_checkpoint",
    "load_optimizer_state",
    "optimizer_state_to_tensors",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
META_FILE = "meta.json"
_SUFFIX = ".safetensors"
_GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_FORMAT = {"format": "sagd-checkpoint", "version": "1"}
_OPT_FORMAT = 1
_TENSOR_REF = "__tensor__"
_TUPLE = "__tuple__"


class CheckpointError(ValueError):
    """A checkpoint could not be written or read (missing, malformed, or inconsistent)."""


@dataclass(frozen=True)
class Checkpoint:
    """What ``load_checkpoint`` returns: tensor groups, the config and the metadata."""

    tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------- saving


def _check_group_name(name: object) -> str:
    if not isinstance(name, str) or not _GROUP_RE.match(name):
        raise CheckpointError(
            f"invalid tensor group name {name!r}: use 1-64 letters, digits, '_' or '-'"
        )
    return name


def _prepare_tensors(group: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies: safetensors refuses shared or strided storage."""
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if not isinstance(key, str) or not key:
            raise CheckpointError(f"group {group!r}: tensor names must be non-empty strings")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"group {group!r}: {key!r} is a {type(value).__name__}, not a torch.Tensor"
            )
        out[key] = value.detach().to("cpu").clone(memory_format=torch.contiguous_format)
    return out


def _dump_json(obj: Mapping[str, Any], what: str) -> str:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{what} must be a dict, got {type(obj).__name__}")
    try:
        return json.dumps(dict(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} is not JSON-serializable: {exc}") from exc


def _fsync_path(path: Path) -> None:
    """Flush a file or directory to disk (best effort where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def save_checkpoint(
    directory: Path,
    *,
    tensors: Mapping[str, Mapping[str, torch.Tensor]],
    config: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> None:
    """Write a checkpoint directory atomically, replacing any existing one at ``directory``.

    Args:
        directory: the checkpoint directory (its parent is created if needed).
        tensors: group name → {tensor name → tensor}; one ``<group>.safetensors`` per group.
        config: JSON-serializable dict written to ``config.json``.
        meta: JSON-serializable dict written to ``meta.json``.

    Raises:
        CheckpointError: invalid group or tensor names, non-tensors, non-JSON config/meta.
    """
    directory = Path(directory)
    # Validate and serialise everything before touching the file system.
    groups = {_check_group_name(g): _prepare_tensors(g, ts) for g, ts in tensors.items()}
    config_text = _dump_json(config, "config")
    meta_text = _dump_json(meta, "meta")

    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    tmp = parent / f".{directory.name}.tmp-{token}"
    old = parent / f".{directory.name}.old-{token}"
    tmp.mkdir()
    try:
        for group, group_tensors in groups.items():
            path = tmp / f"{group}{_SUFFIX}"
            save_file(group_tensors, str(path), metadata={**_FORMAT, "group": group})
            _fsync_path(path)
        _write_text(tmp / CONFIG_FILE, config_text)
        _write_text(tmp / META_FILE, meta_text)
        _fsync_path(tmp)

        if directory.exists() or directory.is_symlink():
            if not directory.is_dir() or directory.is_symlink():
                raise CheckpointError(f"{directory} exists and is not a checkpoint directory")
            # A directory cannot be atomically swapped with a non-empty one: move the old one
            # aside first and put it back if the second rename fails.
            os.replace(directory, old)
            try:
                os.replace(tmp, directory)
            except BaseException:
                os.replace(old, directory)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
        _fsync_path(parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved checkpoint %s (groups: %s)", directory, ", ".join(sorted(groups)) or "-")


# ---------------------------------------------------------------------------------- loading


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path} is not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(value).__name__}")
    return value


def list_groups(directory: Path) -> list[str]:
    """Sorted names of the tensor groups stored in a checkpoint directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    return sorted(
        p.name[: -len(_SUFFIX)]
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(_SUFFIX) and _GROUP_RE.match(p.name[: -len(_SUFFIX)])
    )


def load_checkpoint(
    directory: Path,
    groups: Iterable[str] | None = None,
    *,
    device: str | torch.device = "cpu",
) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``.

    Args:
        directory: the checkpoint directory.
        groups: tensor groups to load; ``None`` loads every group present.
        device: where to put the tensors.

    Raises:
        CheckpointError: missing directory or files, invalid JSON, unknown group, corrupt
            safetensors file.
    """
    directory = Path(directory)
    available = list_groups(directory)
    config = _read_json(directory / CONFIG_FILE)
    meta = _read_json(directory / META_FILE)
    wanted = available if groups is None else [_check_group_name(g) for g in groups]
    missing = [g for g in wanted if g not in available]
    if missing:
        raise CheckpointError(
            f"unknown tensor group(s) {missing} in {directory}; available: {available}"
        )
    loaded: dict[str, dict[str, torch.Tensor]] = {}
    for group in wanted:
        path = directory / f"{group}{_SUFFIX}"
        try:
            loaded[group] = load_file(str(path), device=str(device))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"cannot read tensor group {group!r} from {path}: {exc}") from exc
    return Checkpoint(tensors=loaded, config=config, meta=meta)


# ------------------------------------------------------------------------ optimizer state


def _encode_value(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON form of one optimizer value; tensors go to ``tensors`` and leave a reference."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        return {_TENSOR_REF: key}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode_value(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode_value(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise CheckpointError(
        f"optimizer state entry {key!r} of type {type(value).__name__} cannot be stored"
    )


def _decode_value(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TENSOR_REF}:
            key = value[_TENSOR_REF]
            if key not in tensors:
                raise CheckpointError(f"optimizer state tensor {key!r} is missing")
            return tensors[key]
        if set(value) == {_TUPLE} and isinstance(value[_TUPLE], list):
            return tuple(_decode_value(v, tensors) for v in value[_TUPLE])
        raise CheckpointError(f"unexpected object in optimizer scalars: {sorted(value)}")
    if isinstance(value, list):
        return [_decode_value(v, tensors) for v in value]
    return value


def optimizer_state_to_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into safetensors-ready tensors and JSON-able scalars.

    Tensors are copied (the live state keeps changing as the optimizer steps). Tensor keys look
    like ``state.<param index>.<name>``; the scalars reference them, so
    ``load_optimizer_state`` restores the state dict exactly. Save the tensors as a group
    (e.g. ``"optimizer"``) and the scalars inside ``meta`` (e.g. ``meta["optimizer"]``).
    """
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, dict[str, Any]] = {}
    for pid, entries in state_dict["state"].items():
        state[str(pid)] = {
            name: _encode_value(v, f"state.{pid}.{name}", tensors) for name, v in entries.items()
        }
    param_groups = [
        {name: _encode_value(v, f"param_groups.{i}.{name}", tensors) for name, v in g.items()}
        for i, g in enumerate(state_dict["param_groups"])
    ]
    scalars = {
        "format": _OPT_FORMAT,
        "optimizer": type(optimizer).__name__,
        "state": state,
        "param_groups": param_groups,
    }
    return tensors, scalars


def load_optimizer_state(
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, torch.Tensor],
    scalars: Mapping[str, Any],
) -> None:
    """Restore what ``optimizer_state_to_tensors`` produced into ``optimizer`` (in place).

    Raises:
        CheckpointError: wrong format, another optimizer class, missing tensors, or a state
            that does not fit the optimizer's parameters.
    """
    if not isinstance(scalars, Mapping) or scalars.get("format") != _OPT_FORMAT:
        raise CheckpointError("optimizer scalars have an unknown format")
    expected = type(optimizer).__name__
    if scalars.get("optimizer") != expected:
        raise CheckpointError(
            f"optimizer state was saved from {scalars.get('optimizer')!r}, not {expected!r}"
        )
    state_raw, groups_raw = scalars.get("state"), scalars.get("param_groups")
    if not isinstance(state_raw, Mapping) or not isinstance(groups_raw, list):
        raise CheckpointError("optimizer scalars need a 'state' object and a 'param_groups' list")
    try:
        state = {
            int(pid): {name: _decode_value(v, tensors) for name, v in entries.items()}
            for pid, entries in state_raw.items()
        }
        param_groups = [
            {name: _decode_value(v, tensors) for name, v in group.items()} for group in groups_raw
        ]
    except (AttributeError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"malformed optimizer scalars: {exc}") from exc
    try:
        optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"optimizer state does not fit this optimizer: {exc}") from exc
