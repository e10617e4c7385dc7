"""A corrupted dataset on disk: exact float arrays plus human-readable previews.

Layout of a dataset folder (written by ``sagd corrupt``, read back for training)::

    manifest.json      format, version, shape, dtype, hashes, seed, band spec
    corrupted.npy      float32 (N, C, H, W) in [-1, 1] plus corruption (not clipped)
    clean.npy          the clean images, when known (optional)
    corruption.json    the corruption model (optional: absent for real corrupted data)
    previews/NNNNN.png 8-bit previews of the first corrupted images (clipped, for people only)

Arrays are stored with ``np.save(allow_pickle=False)`` and read with ``allow_pickle=False``, so
the corrupted values survive exactly (8-bit PNG would clip and quantize them). Loading checks the
manifest's shapes and hashes. The folder is written under a temporary name and renamed into place,
so a half-written dataset is never seen under the final name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sagd_core.data.corruptions import Corruption, CorruptionError, parse_corruption
from sagd_core.data.dataset_hash import dataset_hash
from sagd_core.data.image_files import write_bytes_atomic, write_image
from sagd_core.data.ranges import from_model_range
from sagd_core.data.transforms import chw_to_hwc

logger = logging.getLogger(__name__)

FORMAT = "sagd-dataset"
VERSION = 1
MANIFEST = "manifest.json"
CORRUPTED = "corrupted.npy"
CLEAN = "clean.npy"
CORRUPTION = "corruption.json"
PREVIEWS = "previews"
_MAX_JSON_BYTES = 1 << 20


class DatasetFormatError(ValueError):
    """A dataset folder that is missing files, malformed, or fails its hash check."""


@dataclass(frozen=True)
class StoredDataset:
    corrupted: np.ndarray  # float32 (N, C, H, W)
    clean: np.ndarray | None
    corruption: Corruption | None
    manifest: dict[str, Any] = field(default_factory=dict)


def save_dataset(
    path: str | os.PathLike[str],
    clean: np.ndarray | None,
    corrupted: np.ndarray,
    corruption: Corruption | None,
    *,
    seed: int | None = None,
    max_previews: int = 64,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a dataset folder at ``path`` (which must not exist, or be an empty folder).

    ``metadata`` (JSON-serializable, e.g. the source dataset's name) is stored in the manifest.
    Returns the folder's path.
    """
    target = Path(path)
    corrupted_arr = _check_images(corrupted, "corrupted")
    clean_arr = None if clean is None else _check_images(clean, "clean")
    if clean_arr is not None and clean_arr.shape != corrupted_arr.shape:
        raise ValueError(f"clean {clean_arr.shape} and corrupted {corrupted_arr.shape} differ")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty folder")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "count": int(corrupted_arr.shape[0]),
        "shape": list(corrupted_arr.shape[1:]),
        "dtype": "float32",
        "range": [-1.0, 1.0],
        "corrupted_hash": dataset_hash(corrupted_arr),
        "clean_hash": None if clean_arr is None else dataset_hash(clean_arr),
        "corruption": None if corruption is None else corruption.model_dump(mode="json"),
        "band_spec": None if corruption is None else corruption.band_spec().model_dump(mode="json"),
        "seed": seed,
        "previews": min(max_previews, int(corrupted_arr.shape[0])),
        "metadata": metadata or {},
    }
    manifest_text = json.dumps(manifest, indent=2, sort_keys=True)  # fails early if not JSON
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        np.save(tmp / CORRUPTED, corrupted_arr, allow_pickle=False)
        if clean_arr is not None:
            np.save(tmp / CLEAN, clean_arr, allow_pickle=False)
        if corruption is not None:
            (tmp / CORRUPTION).write_text(corruption.model_dump_json(indent=2), encoding="utf-8")
        (tmp / PREVIEWS).mkdir()
        for i in range(manifest["previews"]):
            unit = from_model_range(corrupted_arr[i], clip=True)
            write_image(tmp / PREVIEWS / f"{i:05d}.png", chw_to_hwc(unit), bit_depth=8)
        write_bytes_atomic(tmp / MANIFEST, manifest_text.encode("utf-8"))
        os.replace(tmp, target)  # atomic; replaces an empty folder on POSIX
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("saved dataset of %d images to %s", manifest["count"], target)
    return target


def load_dataset(path: str | os.PathLike[str]) -> StoredDataset:
    """Read a dataset folder written by :func:`save_dataset`, checking shapes and hashes."""
    root = Path(path)
    manifest = _read_json(root / MANIFEST)
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DatasetFormatError(
            f"{root}: not a {FORMAT} version {VERSION} folder (manifest says "
            f"{manifest.get('format')!r} version {manifest.get('version')!r})"
        )
    corrupted = _load_array(root / CORRUPTED, manifest, "corrupted_hash")
    clean = None
    if manifest.get("clean_hash") is not None:
        clean = _load_array(root / CLEAN, manifest, "clean_hash")
    corruption = None
    if (root / CORRUPTION).exists():
        try:
            corruption = parse_corruption(_read_json(root / CORRUPTION))
        except CorruptionError as exc:
            raise DatasetFormatError(f"{root / CORRUPTION}: {exc}") from exc
    return StoredDataset(corrupted=corrupted, clean=clean, corruption=corruption, manifest=manifest)


def _check_images(images: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 4 or not np.issubdtype(arr.dtype, np.floating) or arr.shape[0] < 1:
        raise ValueError(f"{what} must be float (N, C, H, W), N ≥ 1; got {arr.dtype} {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} images hold non-finite values")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _read_json(file: Path) -> dict[str, Any]:
    try:
        if file.stat().st_size > _MAX_JSON_BYTES:
            raise DatasetFormatError(f"{file}: larger than {_MAX_JSON_BYTES} bytes")
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetFormatError(f"{file} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(f"{file}: cannot read JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DatasetFormatError(f"{file}: expected a JSON object")
    return data


def _load_array(file: Path, manifest: dict[str, Any], hash_key: str) -> np.ndarray:
    try:
        arr = np.load(file, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DatasetFormatError(f"{file} is missing") from exc
    except (OSError, ValueError) as exc:
        raise DatasetFormatError(f"{file}: not a readable .npy array ({exc})") from exc
    expected = [manifest.get("count"), *manifest.get("shape", [])]
    if arr.dtype != np.float32 or list(arr.shape) != expected:
        raise DatasetFormatError(
            f"{file}: holds {arr.dtype} {list(arr.shape)}, the manifest says float32 {expected}"
        )
    if dataset_hash(arr) != manifest.get(hash_key):
        raise DatasetFormatError(f"{file}: content does not match the manifest's {hash_key}")
    return arr


__all__ = ["DatasetFormatError", "StoredDataset", "load_dataset", "save_dataset"]
