"""Thresholds and limits of band detection (``sagd analyze``, :mod:`sagd_core.analysis.analyze`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnalyzeConfig(BaseModel):
    """Detection thresholds (power dB) and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_regions: int = Field(default=8, ge=1, le=64)
    annulus_db: float = Field(default=3.0, gt=0.0)
    annulus_min_bins: int = Field(default=2, ge=1)
    line_db: float = Field(default=10.0, gt=0.0)
    line_min_fraction: float = Field(default=0.2, gt=0.0, le=1.0)
    peak_db: float = Field(default=13.0, gt=0.0)
    peak_trend_db: float = Field(default=13.0, gt=0.0)
    min_radius_bins: float = Field(default=2.5, ge=1.0, description="ignore bins this near DC")
    annulus_min_radius: float = Field(
        default=0.05,
        ge=0.0,
        le=0.5,
        description="annuli start at least here (cycles/pixel): below it, rings standing above "
        "a flat trend are usually the image's own low-frequency content",
    )
    trend_degree: int = Field(
        default=2, ge=1, le=3, description="trend for lines and peaks (1: pure power law)"
    )
    peak_min_radius: float = Field(
        default=0.03,
        ge=0.0,
        le=0.5,
        description="peaks start at least here (cycles/pixel): nearer DC, narrow peaks are "
        "usually the image's own large periodic structure (a wall, a fence, a tiled floor)",
    )
    peak_false_alarms: float = Field(
        default=0.01,
        gt=0.0,
        le=1.0,
        description="a reported peak must stand so far above its 7×7 median that a noise-like "
        "periodogram (exponential about its median) would give this many such peaks per image",
    )
    peak_min_spread: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="a peak's excess over its surroundings must spread this evenly over the "
        "image's tiles (participation ratio, 1: every tile alike), as it is or divided by each "
        "tile's brightness (a screen multiplies the image): interference is everywhere, "
        "a photo's own texture is local",
    )
    annulus_min_spread: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="the same for an annulus' excess over the rings beside it",
    )
    tile_band_db: float = Field(
        default=3.5,
        gt=0.0,
        description="an annulus is also found where the median tile's rings stand this far "
        "above the rings beside them",
    )
    residual_band_db: float = Field(
        default=2.5,
        gt=0.0,
        description="an annulus is also found where the median tile of the image's Laplacian, "
        "its edges left out, stands this far above the rings beside it (bands under dense "
        "edges, residual_bands)",
    )
    residual_min_spread: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="such an annulus' excess must spread this evenly over the residual's tiles",
    )
    guard_bins: float = Field(
        default=2.0, ge=0.0, description="peaks this near an annulus or wedge belong to it"
    )


__all__ = ["AnalyzeConfig"]
