"""A content hash for arrays of images, recorded with every trained model (STYLE.md: data hash)."""

from __future__ import annotations

import hashlib

import numpy as np

_CHUNK_BYTES = 1 << 24


def dataset_hash(array: np.ndarray) -> str:
    """``"sha256:<hex>"`` over the array's dtype, shape and bytes.

    The bytes are taken C-contiguous and little-endian, so equal arrays hash equally whatever their
    memory layout; arrays that differ in dtype or shape (even with the same bytes) hash differently.
    """
    arr = np.asarray(array)
    if arr.dtype.hasobject:
        raise ValueError("cannot hash an array of Python objects")
    arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
    digest = hashlib.sha256()
    digest.update(f"dtype={arr.dtype.str};shape={tuple(arr.shape)};".encode())
    flat = arr.reshape(-1).view(np.uint8) if arr.size else np.zeros(0, np.uint8)
    for start in range(0, flat.size, _CHUNK_BYTES):
        digest.update(flat[start : start + _CHUNK_BYTES].data)
    return "sha256:" + digest.hexdigest()


__all__ = ["dataset_hash"]
