"""``sagd train --recipe`` of a tiny model, shared by the recipe and the calibration tests."""

from __future__ import annotations

from pathlib import Path


def tiny_recipe_argv(role: str, corruption: str, out: Path, *, steps: int) -> list[str]:
    """``sagd train`` arguments: a cpu-tiny ``role`` model for ``corruption`` on 16×16 digits,
    batch 4, on the CPU, written to ``out``."""
    options = (
        f"--recipe {role} --corruption {corruption} --data digits --image-size 16 "
        f"--steps {steps} --batch-size 4 --unet cpu-tiny --device cpu --no-progress"
    )
    return ["train", *options.split(), "--out", str(out)]
