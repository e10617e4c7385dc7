"""The model registry (``root/models/registry.json``) and registered corruption types.

Layout: ``root/models/<name>/<version>/`` holds a checkpoint directory written by a training job
(safetensors + JSON, see ``sagd_core.training``); ``registry.json`` lists the versions with their
metadata (kind, image channels, band spec, noise, schedule, data hash, scores) and the default
version of each name. Entries written before a field was recorded (``kind``, ``channels``) get it
from the checkpoint's ``config.json`` when they are read (:func:`checkpoint_fields`).
Writers hold an ``flock`` on ``root/models/.lock`` and replace the JSON atomically, so workers on
several machines sharing the volume see either the old or the new registry, never half of one.
Workers watch the file's ``revision`` to hot-reload models (``worker/models_cache.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sagd_core.spectral.bands import BandSpec
from service.jobs.contracts import CorruptionTypePublic, ModelPublic, ModelVersion
from service.jobs.storage import Storage, check_part


class ModelNotFoundError(LookupError):
    """No such model name or version in the registry."""


class ConflictError(ValueError):
    """The name is already taken."""


def checkpoint_fields(directory: Path) -> dict[str, Any]:
    """``kind`` (the config's role) and ``channels`` (its U-Net's input channels) from a
    checkpoint directory's ``config.json``; what cannot be read is left out (JSON only, no
    torch)."""
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(config, dict):
        return {}
    fields: dict[str, Any] = {}
    if isinstance(config.get("role"), str):
        fields["kind"] = config["role"]
    unet = config.get("model")
    channels = unet.get("in_channels") if isinstance(unet, dict) else None
    if isinstance(channels, int) and not isinstance(channels, bool):
        fields["channels"] = channels
    return fields


class ModelRegistry:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.file = storage.models_dir() / "registry.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.storage.models_dir() / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.file.read_text())
        except FileNotFoundError:
            return {"revision": 0, "models": {}}
        data.setdefault("revision", 0)
        data.setdefault("models", {})
        return data

    def revision(self) -> tuple[int, int]:
        """A cheap change marker: (mtime_ns, size) of the registry file, (0, 0) if absent."""
        try:
            stat = os.stat(self.file)
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    def _save(self, data: dict[str, Any]) -> None:
        data["revision"] = int(data.get("revision", 0)) + 1
        self.storage.write_json(self.file, data)

    def list_models(self) -> list[ModelPublic]:
        models = self.load()["models"]
        out = []
        for name in sorted(models):
            entry = models[name]
            versions = [
                self._version(name, int(v), meta)
                for v, meta in sorted(entry["versions"].items(), key=lambda kv: int(kv[0]))
            ]
            out.append(
                ModelPublic(name=name, default_version=entry["default_version"], versions=versions)
            )
        return out

    def resolve(self, name: str, version: int | None = None) -> tuple[int, Path]:
        """The version number and checkpoint directory of ``name`` (default version if None)."""
        chosen, _ = self._entry(name, version)
        return chosen, self.storage.model_dir(name, chosen)

    def _entry(self, name: str, version: int | None) -> tuple[int, dict[str, Any]]:
        """``(version, its registry entry)``; the default version if None."""
        entry = self.load()["models"].get(name)
        if entry is None:
            raise ModelNotFoundError(f"no model named {name!r} in the registry")
        chosen = int(entry["default_version"]) if version is None else int(version)
        meta: dict[str, Any] | None = entry["versions"].get(str(chosen))
        if meta is None:
            raise ModelNotFoundError(f"model {name!r} has no version {chosen}")
        return chosen, meta

    def describe(self, name: str, version: int | None = None) -> ModelVersion:
        """What the registry knows of ``name`` at ``version`` (the default version if None):
        its kind and image channels among the rest (``ModelNotFoundError`` as :meth:`resolve`)."""
        chosen, meta = self._entry(name, version)
        return self._version(name, chosen, meta)

    def _version(self, name: str, version: int, meta: dict[str, Any]) -> ModelVersion:
        """A version's entry; ``kind`` and ``channels`` read from its checkpoint when the entry
        predates them."""
        missing = meta.get("kind") is None or meta.get("channels") is None
        found = checkpoint_fields(self.storage.model_dir(name, version)) if missing else {}
        known = {k: v for k, v in meta.items() if v is not None}
        return ModelVersion.model_validate({**found, **known, "version": version})

    def add_version(self, name: str, staged_dir: Path, metadata: dict[str, Any]) -> int:
        """Move a finished checkpoint directory into place as the next version (the new default)."""
        check_part(name)
        with self._locked():
            data = self.load()
            entry = data["models"].setdefault(name, {"default_version": 0, "versions": {}})
            version = max((int(v) for v in entry["versions"]), default=0) + 1
            target = self.storage.model_dir(name, version)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # left over from a crash before the registry was written
                target.rename(target.with_name(f".stale-{version}-{os.getpid()}"))
            os.replace(staged_dir, target)
            meta = {**metadata, "version": version}
            meta.setdefault("created_at", datetime.now(UTC).isoformat())
            entry["versions"][str(version)] = meta
            entry["default_version"] = version
            self._save(data)
        return version

    def set_default(self, name: str, version: int) -> None:
        with self._locked():
            data = self.load()
            entry = data["models"].get(name)
            if entry is None or str(version) not in entry["versions"]:
                raise ModelNotFoundError(f"model {name!r} has no version {version}")
            entry["default_version"] = int(version)
            self._save(data)


class CorruptionTypes:
    """Named band specs under ``root/corruption_types/<name>.json``."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _file(self, name: str) -> Path:
        self.storage.corruption_types_dir()
        return self.storage.path("corruption_types", f"{check_part(name)}.json")

    def create(self, name: str, band: BandSpec, description: str = "") -> CorruptionTypePublic:
        item = CorruptionTypePublic(
            name=name, band=band, description=description, created_at=datetime.now(UTC)
        )
        path = self._file(name)
        # O_EXCL makes "create" race-free across API processes sharing the volume.
        try:
            fd = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError as exc:
            raise ConflictError(f"corruption type {name!r} already exists") from exc
        os.close(fd)
        self.storage.write_bytes(path, item.model_dump_json(indent=2).encode())
        return item

    def get(self, name: str) -> CorruptionTypePublic | None:
        try:
            return CorruptionTypePublic.model_validate_json(self._file(name).read_bytes())
        except FileNotFoundError:
            return None

    def list(self) -> list[CorruptionTypePublic]:
        directory = self.storage.corruption_types_dir()
        items = []
        for path in sorted(directory.glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                items.append(CorruptionTypePublic.model_validate_json(path.read_bytes()))
        return items
