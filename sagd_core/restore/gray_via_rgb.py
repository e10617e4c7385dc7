"""A gray image through RGB models (the shipped default model is RGB): the gray channel is copied
to R, G and B, the learned method runs in RGB, and the mean of the three restored channels is
read back. A gray image holds equal channels, so the mean is its luminance, and the three fills of
the band are averaged (a little less spread than one).

The trusted bins stay exact: every channel keeps the input's trusted bins (DESIGN.md §4.1), so
their mean is the input's. The reverse (an RGB image through gray models) is refused by
:func:`sagd_core.restore.learned.check_models` with a clear error (the service answers 422 at
submit): running it per channel would triple the time without saying so.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sagd_core.restore.models import ModelSet
from sagd_core.restore.report import MethodOutcome

#: What the report says when this route was taken.
NOTE = (
    "gray image restored through RGB model(s): the gray channel copied to R, G and B, the mean "
    "of the three restored channels read back"
)


def takes_gray_via_rgb(models: ModelSet, channels: int) -> bool:
    """True for a gray image when every given model is RGB."""
    roles = models.roles()
    return channels == 1 and bool(roles) and all(getattr(models, r).channels == 3 for r in roles)


def to_rgb(y: np.ndarray) -> np.ndarray:
    """``(N, 1, H, W)`` → ``(N, 3, H, W)`` with equal channels."""
    return np.repeat(y, 3, axis=1)


def back_to_gray(outcome: MethodOutcome) -> MethodOutcome:
    """The outcome of the RGB run with its samples averaged over channels ``(K, 1, H, W)`` and the
    route stated in its details."""
    samples = np.asarray(outcome.samples, dtype=np.float64).mean(axis=1, keepdims=True)
    return dataclasses.replace(
        outcome, samples=samples, details={**outcome.details, "gray_via_rgb": NOTE}
    )


__all__ = ["NOTE", "back_to_gray", "takes_gray_via_rgb", "to_rgb"]
