"""Noise weight families ``w(f)`` and the noise specification (DESIGN.md §3.2).

Every family is real and radially or point symmetric, so filtered real noise stays real. Weights
live on the ``rfft2`` half grid and are normalised analytically so the shaped noise has unit pixel
variance: ``mean_full_grid(w²) = 1`` (Parseval with orthonormal transforms). P1's per-sample
spatial-std normalisation is available as ``normalization="per_sample_std"`` only to reproduce P1:
it makes the noise non-Gaussian.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sagd_core.spectral.bands import BandSpec, RadialRange, RadiusConvention
from sagd_core.spectral.grid import R_MAX, half_grid_multiplicity, radius_grid
from sagd_core.spectral.masks import band_mask

NoiseKind = Literal["white", "plw", "bpm", "exp", "equal_snr", "band"]


class BpmBand(RadialRange):
    """One term ``γ · M_[low, high)`` of a band-pass mixture."""

    range_name = "bpm band"
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    low: float = Field(ge=0.0)
    high: float = Field(gt=0.0)
    gamma: float = Field(ge=0.0)


class RadialProfile(BaseModel):
    """A measured radially averaged power spectrum ``C(r)`` (r in cycles/pixel)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    radii: list[float] = Field(min_length=2, max_length=4096)
    power: list[float] = Field(min_length=2, max_length=4096)

    @model_validator(mode="after")
    def _consistent(self) -> RadialProfile:
        if len(self.radii) != len(self.power):
            raise ValueError("radii and power must have the same length")
        if any(b <= a for a, b in zip(self.radii, self.radii[1:], strict=False)):
            raise ValueError("radii must be strictly increasing")
        if any(p < 0 for p in self.power):
            raise ValueError("power must be non-negative")
        return self


class NoiseSpec(BaseModel):
    """Which forward noise a model is trained and sampled with.

    ``kind``: ``white`` (w ≡ 1), ``plw`` (``max(r, r_min)^alpha``), ``bpm`` (band-pass mixture,
    one pass then normalised), ``exp`` (``exp(−beta r²)``), ``equal_snr`` (``w² ∝ C(f)``),
    ``band`` (``w = M_band``: noise only inside a band, the "band model" of DESIGN.md §4.3).
    ``omit``: multiply ``w`` by ``1 − M_omit`` (selective omission).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: NoiseKind = "white"
    alpha: float = Field(default=0.0, ge=-4.0, le=4.0)
    r_min: float | None = Field(default=None, gt=0.0, le=R_MAX)
    bands: list[BpmBand] = Field(default_factory=list, max_length=64)
    bpm_radius: RadiusConvention = "absolute"
    beta: float = Field(default=0.0, ge=0.0, le=1e4)
    spectrum: RadialProfile | None = None
    band: BandSpec | None = None
    omit: BandSpec | None = None
    normalization: Literal["analytic", "per_sample_std"] = "analytic"

    @model_validator(mode="after")
    def _kind_fields(self) -> NoiseSpec:
        if self.kind == "bpm" and not self.bands:
            raise ValueError("noise kind 'bpm' needs a non-empty 'bands' list")
        if self.kind == "equal_snr" and self.spectrum is None:
            raise ValueError("noise kind 'equal_snr' needs a measured 'spectrum'")
        if self.kind == "band" and self.band is None:
            raise ValueError("noise kind 'band' needs a 'band' spec")
        return self

    @property
    def is_white(self) -> bool:
        return self.kind == "white" and self.omit is None

    def describe(self) -> str:
        extra = {
            "plw": f"alpha={self.alpha}",
            "exp": f"beta={self.beta}",
            "bpm": f"{len(self.bands)} bands",
        }.get(self.kind, "")
        omit = " with omission" if self.omit is not None else ""
        return f"{self.kind}{'(' + extra + ')' if extra else ''}{omit}"


class DegenerateNoiseError(ValueError):
    """The weights are zero everywhere (for example, the omitted band covers the whole grid)."""


def _raw_weights(spec: NoiseSpec, height: int, width: int) -> np.ndarray:
    shape = (height, width // 2 + 1)
    if spec.kind == "white":
        return np.ones(shape)
    r = radius_grid(height, width)
    if spec.kind == "plw":
        # P1 uses r + 1e-10, which puts a huge weight on DC for |α| ≳ 0.1; we floor at one bin.
        r_min = spec.r_min if spec.r_min is not None else 1.0 / max(height, width)
        return np.power(np.maximum(r, r_min), spec.alpha)
    if spec.kind == "bpm":
        rb = radius_grid(height, width, convention=spec.bpm_radius)
        w = np.zeros(shape)
        for b in spec.bands:  # one pass, normalised afterwards (not per band as P1's code did)
            w += b.gamma * ((rb >= b.low) & (rb < b.high))
        return w
    if spec.kind == "exp":
        return np.exp(-spec.beta * r**2)
    if spec.kind == "equal_snr":
        assert spec.spectrum is not None
        power = np.interp(r, spec.spectrum.radii, spec.spectrum.power)
        return np.sqrt(np.maximum(power, 0.0))
    if spec.kind == "band":
        assert spec.band is not None
        return band_mask(spec.band, height, width).copy()
    raise ValueError(f"unknown noise kind {spec.kind!r}")  # pragma: no cover


def noise_weights(spec: NoiseSpec, height: int, width: int) -> np.ndarray:
    """Normalised weights ``w`` on the half grid ``(H, W//2+1)``, float64.

    Omission is applied before normalisation so the pixel variance of the shaped noise is 1.
    """
    w = _raw_weights(spec, height, width)
    if spec.omit is not None:
        w = w * (1.0 - band_mask(spec.omit, height, width))
    mult = half_grid_multiplicity(height, width)
    mean_sq = float((w**2 * mult).sum()) / (height * width)
    if not np.isfinite(mean_sq) or mean_sq <= 0.0:
        raise DegenerateNoiseError(
            f"noise {spec.describe()} has no energy at {height}×{width} "
            "(the omitted band covers every frequency, or the band is empty)"
        )
    return w / np.sqrt(mean_sq)
