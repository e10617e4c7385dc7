"""What a restoration returns: the image, the same before clipping, a report and uncertainty."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RestoreResult:
    """``image``: the caller's shape, float32 in [0, 1] (clipped). ``unclipped``: the same before
    clipping (the out-of-band guarantee holds for it exactly). ``uncertainty``: per-pixel std of
    the samples in [0, 1] units, when ``samples > 1`` and the method is stochastic."""

    image: np.ndarray
    unclipped: np.ndarray
    report: dict[str, Any]
    uncertainty: np.ndarray | None = None


__all__ = ["RestoreResult"]
