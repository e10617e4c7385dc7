"""The environment line every benchmark prints (measured claims need their machine)."""

from __future__ import annotations

import os
import platform
import sys

import torch


def describe_environment(device: torch.device | None = None) -> str:
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
