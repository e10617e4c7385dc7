"""The corruption level ``s²`` of band-limited noise, estimated from corrupted images alone
(DESIGN.md §4.3, last point: "in-band energy above the spectrum's trend").

A model trained with forward noise shaped like the corruption reads the clean posterior mean only
if it knows ``s²``, the corruption's power in units of the forward noise (``c ~ N(0, s² Σ_w)``,
:mod:`sagd_core.samplers.corrupted_read`). Here the images' mean power per bin is measured; on
the trusted bins near the band, ``log power`` is fitted by a line in ``log r`` (natural and
``1/f^α`` spectra are close to power laws); the fit, evaluated in the band, predicts the clean
power there, and what the band holds above it is the corruption:
``s² = Σ_B (P − P̂) / Σ_B w²`` (full-grid sums). Unlike the raw ratio of band power to noise
power (:func:`sagd_core.restore.methods.band_prior.corruption_ratio`), the clean band's own
power is not counted as corruption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.grid import half_grid_multiplicity, radius_grid
from sagd_core.spectral.masks import band_mask

#: The trend is fitted on trusted bins with radius in [r_low / CONTEXT, r_high · CONTEXT].
CONTEXT = 2.0
#: Fewest trusted bins for the fit.
MIN_FIT_BINS = 8


@dataclass(frozen=True)
class CorruptionLevel:
    """``variance``: ``s²`` (≥ 0); ``slope``: the fitted ``d log P / d log r``; ``excess``: the
    band's power above the trend over its total power (how much of the band is corruption)."""

    variance: float
    slope: float
    excess: float


def estimate_corruption_level(
    images: np.ndarray, spec: BandSpec, weights: np.ndarray
) -> CorruptionLevel:
    """Estimate ``s²`` from corrupted ``images`` ``(N, C, H, W)`` for a model whose forward noise
    weights are ``weights`` (half grid) and whose band is ``spec`` (module docstring)."""
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"images must be (N, C, H, W) with N ≥ 1, got {images.shape}")
    h, w = images.shape[-2:]
    if weights.shape != (h, w // 2 + 1):
        raise ValueError(f"weights of shape {weights.shape} for {h}×{w} images")
    spectra = np.fft.rfft2(images.astype(np.float64), norm="ortho")
    power = (np.abs(spectra) ** 2).mean(axis=(0, 1))
    r = radius_grid(h, w)
    in_band = (band_mask(spec, h, w) > 0.0) & (r > 0.0)
    if not in_band.any():
        raise ValueError("the band holds no frequency bin at this size")
    lo, hi = float(r[in_band].min()), float(r[in_band].max())
    near = (~in_band) & (r >= lo / CONTEXT) & (r <= hi * CONTEXT) & (r > 0.0) & (power > 0.0)
    if int(near.sum()) < MIN_FIT_BINS:
        raise ValueError(f"too few trusted bins near the band to fit the trend ({near.sum()})")
    slope, intercept = np.polyfit(np.log(r[near]), np.log(power[near]), 1)
    trend = np.exp(intercept + slope * np.log(r[in_band]))
    mult = half_grid_multiplicity(h, w)[in_band]
    # Summed before clipping: clipping bin by bin would count their sampling noise as corruption.
    above = max(float(((power[in_band] - trend) * mult).sum()), 0.0)
    noise = float((weights[in_band].astype(np.float64) ** 2 * mult).sum())
    if noise <= 0.0:
        raise ValueError("the forward noise has no power in the band")
    total = float((power[in_band] * mult).sum())
    return CorruptionLevel(
        variance=above / noise, slope=float(slope), excess=above / total if total > 0 else 0.0
    )


__all__ = ["CONTEXT", "CorruptionLevel", "estimate_corruption_level"]
