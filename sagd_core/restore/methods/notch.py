"""Notch filters: the classical baselines (DESIGN.md §4.2 — an omission model with no broadband
noise is exactly the hard notch).

The gain ``g(f)`` multiplies the spectrum of every channel:

- ``hard``: ``g = 1 − M`` with the spec's own mask (its ``softness`` roll-off included). Trusted
  bins (``M = 0``) are returned exactly; the band is zeroed.
- ``gaussian``: ``g = 0`` on the stop region (the spec with ``softness`` 0) and
  ``g = 1 − exp(−d²/(2δ²))`` outside it, ``d`` the distance in cycles/pixel to the nearest stopped
  bin: the Gaussian notch-reject filter, measured from the band's edge instead of its centre so
  the stated band is always fully rejected.
- ``butterworth``: ``g = 0`` on the stop region, ``g = 1 / (1 + (δ/d)^{2n})`` outside (order
  ``n = 2``).

Smooth roll-offs ring less but also attenuate trusted content near the band (reported as the
out-of-band residual). They never attenuate DC and its neighbourhood: bins closer to DC than half
the band's distance from it keep gain 1 (a raised cosine joins the roll-off beyond). ``δ``
defaults to the spec's softness, or 1.5 frequency bins.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from sagd_core.restore.progress import Progress
from sagd_core.restore.report import BandAction, MethodOutcome
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.fft import apply_gain
from sagd_core.spectral.masks import band_mask

if TYPE_CHECKING:
    from sagd_core.restore.request import RestoreRequest

Rolloff = Literal["hard", "gaussian", "butterworth"]
ROLLOFFS: tuple[Rolloff, ...] = ("hard", "gaussian", "butterworth")
BUTTERWORTH_ORDER = 2


def default_width(spec: BandSpec, height: int, width: int) -> float:
    """Roll-off width δ in cycles/pixel: the spec's softness, else 1.5 bins of the coarser axis."""
    if spec.softness > 0:
        return spec.softness / (min(height, width) if spec.units == "cycles/image" else 1.0)
    return 1.5 / min(height, width)


def _distance_to_stop(stop_full: np.ndarray, reach: float) -> np.ndarray:
    """Euclidean distance (cycles/pixel) from every bin to the nearest stopped bin on the
    periodic frequency grid; distances beyond ``reach`` are only guaranteed to be ≥ reach."""
    h, w = stop_full.shape
    pad_y = min(h, math.ceil(reach * h) + 1)
    pad_x = min(w, math.ceil(reach * w) + 1)
    padded = np.pad(stop_full, ((pad_y, pad_y), (pad_x, pad_x)), mode="wrap")
    if not padded.any():
        return np.full((h, w), np.inf)
    from scipy import ndimage  # only smooth roll-offs need it (start-up of the hard notch)

    dist = ndimage.distance_transform_edt(~padded, sampling=(1.0 / h, 1.0 / w))
    return np.asarray(dist)[pad_y : pad_y + h, pad_x : pad_x + w]


def _near_dc_protection(reach: float, height: int, width: int) -> np.ndarray:
    """1 on the bins closer to DC than half the band's distance ``reach`` from DC, falling
    (raised cosine) to 0 at ``reach``: a roll-off never attenuates the mean and the lowest
    frequencies next to it (a wedge through the origin would otherwise dim the whole image)."""
    if not math.isfinite(reach) or reach <= 0:
        return np.zeros((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    t = np.clip((np.hypot(fy, fx) - reach / 2) / (reach / 2), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


@lru_cache(maxsize=64)
def _gain_cached(key: str, height: int, width: int, rolloff: str, delta: float) -> np.ndarray:
    spec = BandSpec.model_validate_json(key)
    if rolloff == "hard":
        gain = 1.0 - band_mask(spec, height, width)
    else:
        hard = spec.model_copy(update={"softness": 0.0})
        stop = band_mask(hard, height, width, half=False) > 0
        d = _distance_to_stop(stop, reach=8.0 * delta)
        with np.errstate(divide="ignore", over="ignore"):
            if rolloff == "gaussian":
                full = 1.0 - np.exp(-(d**2) / (2.0 * delta**2))
            else:
                full = 1.0 / (1.0 + (delta / d) ** (2 * BUTTERWORTH_ORDER))
        full = np.maximum(full, _near_dc_protection(d[0, 0], height, width))
        full = np.where(stop, 0.0, full)
        gain = np.ascontiguousarray(full[:, : width // 2 + 1])
    gain.setflags(write=False)
    return gain


def notch_gain(
    spec: BandSpec,
    height: int,
    width: int,
    rolloff: Rolloff = "hard",
    *,
    rolloff_width: float | None = None,
) -> np.ndarray:
    """The notch gain on the half grid ``(H, W//2+1)``, float64 in ``[0, 1]``, read-only."""
    if rolloff not in ROLLOFFS:
        raise ValueError(f"unknown notch roll-off {rolloff!r}; valid: {', '.join(ROLLOFFS)}")
    delta = default_width(spec, height, width) if rolloff_width is None else rolloff_width
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"roll-off width must be positive and finite, got {delta}")
    return _gain_cached(spec.cache_key(), height, width, rolloff, float(delta))


def run_notch(y: np.ndarray, request: RestoreRequest, progress: Progress) -> MethodOutcome:
    """The notch method on ``y`` ``(1, C, H, W)`` (model range): the band set to zero (or
    attenuated by a roll-off); no model, no torch."""
    h, w = y.shape[-2:]
    gain = notch_gain(request.band, h, w, request.notch_rolloff, rolloff_width=request.notch_width)
    out = apply_gain(y, gain)
    progress.advance()
    hard = request.notch_rolloff == "hard"
    warnings = (
        ["the notch is deterministic: samples > 1 gives no uncertainty map"]
        if request.samples > 1
        else []
    )
    return MethodOutcome(
        warnings=warnings,
        samples=out,
        band=BandAction(
            "omitted" if hard else "attenuated",
            f"{request.notch_rolloff} notch: the band is set to zero"
            + ("" if hard else ", with a smooth roll-off outside it"),
        ),
        trusted="returned exactly" if hard else "attenuated near the band",
        details={"rolloff": request.notch_rolloff},
    )


__all__ = [
    "BUTTERWORTH_ORDER",
    "ROLLOFFS",
    "Rolloff",
    "default_width",
    "notch_gain",
    "run_notch",
]
