"""One device rule for training, restoration and the workers: ``auto`` = CUDA when available."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """An unknown device name, or CUDA asked for where there is none."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; any other torch device name as given.
    Call it in the process that will use the device (a worker child after fork, never the
    parent: initialising CUDA before a fork breaks the children)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' requested but CUDA is not available")
    return device


__all__ = ["DeviceError", "resolve_device"]
