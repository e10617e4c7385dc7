"""The environment line every benchmark prints (measured claims need their machine)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def describe_numpy_environment(what: str) -> str:
    """The environment of a numpy-only benchmark (no torch imported): ``what`` says which part
    runs single-threaded."""
    import numpy as np

    return (
        f"python {sys.version.split()[0]}, numpy {np.__version__}, {platform.platform()}\n"
        f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores "
        f"({what} runs single-threaded numpy); gpu: none used"
    )


def describe_environment(device: torch.device | None = None) -> str:
    import torch

    lines = [
        f"python {sys.version.split()[0]}, torch {torch.__version__}, {platform.platform()}",
        f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"torch threads {torch.get_num_threads()}",
    ]
    if device is not None and device.type == "cuda":
        lines.append(f"gpu: {torch.cuda.get_device_name(device)}")
    else:
        lines.append("gpu: none used")
    return "\n".join(lines)


def start_preset_bench(device_setting: str, preset: Any, out: Path) -> tuple[torch.device, str]:
    """A preset benchmark's opening: the device resolved, the environment and the preset
    printed, ``out/figures`` created; returns the device and the environment text."""
    from sagd_core.training import resolve_device

    device = resolve_device(device_setting)
    env = describe_environment(device)
    print(env)
    print(f"preset {preset.name}: {preset}")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    return device, env
