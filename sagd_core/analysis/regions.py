"""A detected region of ``sagd analyze`` and the dB ↔ natural-log conversions the detector's
thresholds use (thresholds are in dB of power; spectra are natural logs)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def db_to_log(db: float) -> float:
    return db / 10.0 * math.log(10.0)


def log_to_db(x: float) -> float:
    return float(x) * 10.0 / math.log(10.0)


@dataclass(frozen=True)
class DetectedRegion:
    region: dict[str, Any]  # a BandSpec region (cycles/pixel)
    score_db: float  # how far it stands above its background
    source: str  # "annulus" | "line" | "peak"


__all__ = ["DetectedRegion", "db_to_log", "log_to_db"]
