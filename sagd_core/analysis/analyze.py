"""Band detection (``sagd analyze``): find frequency regions standing above an image's spectral
trend and emit them as a :class:`BandSpec` (SAGD.md §2).

1. Log periodogram of the Hann-windowed image (:mod:`spectrum_stats`), channels averaged.
2. Radial profile (median per one-bin ring) and a robust power-law fit ``log P ≈ a + b log r``.
3. **Annuli**: runs of rings whose median stands ``annulus_db`` above the trend (band-limited
   noise raises whole rings; a median ignores isolated peaks and lines).
4. **Lines** (stripe noise puts its energy on a line through DC, perpendicular to the stripes):
   rays from DC sampled every half degree; a ray whose residual stays ``line_db`` above the trend
   over a long run of radii is a line; adjacent rays merge into one ``wedge``.
5. **Peaks** (periodic interference): bins ``peak_db`` above a 7×7 median background and
   ``peak_trend_db`` above the trend, outside annuli and wedges, grouped into connected
   components; each conjugate pair becomes one ``notch``.

Thresholds are in dB of power. Regions are ranked by how far they stand out; at most
``max_regions`` are kept, and the weakest are dropped while the union would cover DC or more than
half of the spectrum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from sagd_core.analysis.spectrum_stats import (
    PowerLawFit,
    Spectrum,
    fit_power_law,
    power_spectrum,
    radial_profile,
)
from sagd_core.restore.inputs import prepare_image
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.masks import band_mask, mask_report


class AnalyzeConfig(BaseModel):
    """Detection thresholds (power dB) and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_regions: int = Field(default=8, ge=1, le=64)
    annulus_db: float = Field(default=6.0, gt=0.0)
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
    guard_bins: float = Field(
        default=2.0, ge=0.0, description="peaks this near an annulus or wedge belong to it"
    )


def _db_to_log(db: float) -> float:
    return db / 10.0 * math.log(10.0)


def _log_to_db(x: float) -> float:
    return float(x) * 10.0 / math.log(10.0)


@dataclass(frozen=True)
class DetectedRegion:
    region: dict[str, Any]  # a BandSpec region (cycles/pixel)
    score_db: float  # how far it stands above its background
    source: str  # "annulus" | "line" | "peak"


@dataclass
class Analysis:
    """What :func:`analyze_image` found."""

    height: int
    width: int
    fit: PowerLawFit
    radii: np.ndarray
    profile: np.ndarray  # median log power per ring
    regions: list[DetectedRegion] = field(default_factory=list)
    dropped: list[DetectedRegion] = field(default_factory=list)

    @property
    def spec(self) -> BandSpec | None:
        if not self.regions:
            return None
        return BandSpec.model_validate({"regions": [r.region for r in self.regions]})

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "image": {"height": self.height, "width": self.width},
            "band_spec": spec.model_dump(mode="json") if spec is not None else None,
            "regions": [
                {"region": r.region, "score_db": r.score_db, "source": r.source}
                for r in self.regions
            ],
            "dropped": [
                {"region": r.region, "score_db": r.score_db, "source": r.source}
                for r in self.dropped
            ],
            "power_law": {
                "slope": self.fit.slope,
                "intercept": self.fit.intercept,
                "r_low": self.fit.r_low,
                "r_high": self.fit.r_high,
                "scatter_db": _log_to_db(self.fit.scatter),
            },
            "radial_profile": {
                "radii": [round(float(r), 6) for r in self.radii],
                "log_power": [round(float(p), 4) for p in self.profile],
                "log_trend": [round(float(t), 4) for t in self.fit.log_trend(self.radii)],
            },
        }


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True values."""
    out, start = [], None
    for i, f in enumerate(np.append(flags, False)):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    return out


def _annuli(
    radii: np.ndarray, profile: np.ndarray, fit: PowerLawFit, bw: float, cfg: AnalyzeConfig
) -> list[DetectedRegion]:
    res = profile - fit.log_trend(radii)
    start = max(cfg.min_radius_bins * bw, cfg.annulus_min_radius)
    flags = (res > _db_to_log(cfg.annulus_db)) & (radii >= start) & (radii <= fit.r_high)
    out = []
    for a, b in _runs(flags):
        if b - a < cfg.annulus_min_bins:
            continue
        # Spectra of images fall with r; band noise makes the profile *rise* into the band.
        # The band starts at the first rise inside the run; a run without one is the image's
        # own shape (a knee above a straight trend), not a band.
        rises = [
            k
            for k in range(max(a, 2), b)
            if profile[k] - profile[k - 2] > _db_to_log(cfg.annulus_db / 2)
        ]
        if not rises:
            continue
        a = max(rises[0] - 1, a) if profile[rises[0] - 1] - profile[rises[0] - 2] > 0 else rises[0]
        if b - a < cfg.annulus_min_bins:
            continue
        low = max(float(radii[a]) - bw / 2, start - bw / 2)
        high = float(radii[b - 1]) + bw / 2
        out.append(
            DetectedRegion(
                {"kind": "annulus", "low": round(low, 6), "high": round(high, 6)},
                _log_to_db(res[a:b].max()),
                "annulus",
            )
        )
    return out


def _lines(spectrum: Spectrum, resid: np.ndarray, cfg: AnalyzeConfig) -> list[DetectedRegion]:
    h, w = spectrum.shape
    bw = spectrum.bin_width
    k = np.arange(math.ceil(cfg.min_radius_bins), int(0.5 / bw) + 1)
    radii = k * bw
    step = 0.5
    thetas = np.arange(0.0, 180.0, step)
    t = np.radians(thetas)[:, None]
    iy = np.rint(radii[None, :] * np.sin(t) * h).astype(int) % h
    ix = np.rint(radii[None, :] * np.cos(t) * w).astype(int) % w
    values = resid[iy, ix]  # (angles, radii)
    flags = values > _db_to_log(cfg.line_db)
    min_run = max(4, round(cfg.line_min_fraction * radii.size))
    hits: dict[int, tuple[int, int, float]] = {}
    for j in range(thetas.size):
        runs = [(a, b) for a, b in _runs(flags[j]) if b - a >= min_run]
        if runs:
            a, b = max(runs, key=lambda ab: ab[1] - ab[0])
            hits[j] = (a, b, float(np.median(values[j, a:b])))
    # Group adjacent angles (cyclic over 180°).
    groups: list[list[int]] = []
    for j in sorted(hits):
        if groups and j - groups[-1][-1] <= 2:
            groups[-1].append(j)
        else:
            groups.append([j])
    if len(groups) > 1 and groups[0][0] + thetas.size - groups[-1][-1] <= 2:
        groups[0] = groups.pop() + groups[0]
    out = []
    for g in groups:
        angles = np.unwrap(np.radians(thetas[g]) * 2) / 2  # continuous across 180°
        centre = math.degrees(float(np.mean(angles))) % 180.0
        half_span = math.degrees(float(np.ptp(angles))) / 2
        low = min(radii[hits[j][0]] for j in g) - bw
        high = max(radii[hits[j][1] - 1] for j in g) + bw
        region = {
            "kind": "wedge",
            "angle_deg": round(centre, 3),
            "tolerance_deg": round(min(max(half_span + 1.5, 2.0), 45.0), 3),
            "low": round(max(float(low), cfg.min_radius_bins * bw - bw / 2), 6),
            "high": round(float(high), 6),
        }
        score = max(hits[j][2] for j in g)
        out.append(DetectedRegion(region, _log_to_db(score), "line"))
    return out


def _peaks(
    spectrum: Spectrum, resid: np.ndarray, excluded: np.ndarray, cfg: AnalyzeConfig
) -> list[DetectedRegion]:
    h, w = spectrum.shape
    bw = spectrum.bin_width
    logp = spectrum.log_power
    background = ndimage.median_filter(logp, size=7, mode="wrap")
    local = logp - background
    cand = (
        (local > _db_to_log(cfg.peak_db))
        & (resid > _db_to_log(cfg.peak_trend_db))
        & (spectrum.radius >= cfg.min_radius_bins * bw)
        & ~excluded
    )
    shifted = np.fft.fftshift(cand)
    labels, n = ndimage.label(shifted, structure=np.ones((3, 3)))
    fy_s = np.fft.fftshift(np.broadcast_to(spectrum.fy, (h, w)))
    fx_s = np.fft.fftshift(np.broadcast_to(spectrum.fx, (h, w)))
    weight_s = np.fft.fftshift(np.exp(local))
    local_s = np.fft.fftshift(local)
    found: list[tuple[float, float, float, float]] = []  # fy, fx, radius, score
    for lab in range(1, n + 1):
        sel = labels == lab
        wts = weight_s[sel]
        cy = float((fy_s[sel] * wts).sum() / wts.sum())
        cx = float((fx_s[sel] * wts).sum() / wts.sum())
        extent = float(np.sqrt((fy_s[sel] - cy) ** 2 + (fx_s[sel] - cx) ** 2).max())
        if cx < 0 or (cx == 0 and cy < 0):  # one representative per conjugate pair
            cy, cx = -cy, -cx
        score = float(local_s[sel].max())
        radius = max(2.0 * bw, extent + bw)
        dup = [
            i for i, (fy, fx, _, _) in enumerate(found) if math.hypot(fy - cy, fx - cx) < 2.5 * bw
        ]
        if dup:
            i = dup[0]
            if score > found[i][3]:
                found[i] = (cy, cx, max(radius, found[i][2]), score)
            continue
        found.append((cy, cx, radius, score))
    return [
        DetectedRegion(
            {
                "kind": "notch",
                "fy": round(fy, 6),
                "fx": round(fx, 6),
                "radius": round(min(rad, 0.25), 6),
            },
            _log_to_db(sc),
            "peak",
        )
        for fy, fx, rad, sc in found
    ]


def _region_mask(region: dict[str, Any], h: int, w: int, grow: float = 0.0) -> np.ndarray:
    """Full-grid mask of one region, widened by ``grow`` cycles/pixel."""
    spec = BandSpec.model_validate(
        {"regions": [region], "allow_ill_posed": True, "softness": min(grow, 0.25)}
    )
    return band_mask(spec, h, w, half=False) > 0


def analyze_chw(chw: np.ndarray, config: AnalyzeConfig | None = None) -> Analysis:
    """Analyze a ``(C, H, W)`` image (any real scale)."""
    cfg = config or AnalyzeConfig()
    spectrum = power_spectrum(chw)
    h, w = spectrum.shape
    bw = spectrum.bin_width
    radii, profile, counts = radial_profile(spectrum)
    # A pure power law finds annuli (a curved trend would bend into a broad bump); the curved
    # trend follows spectra that fall off faster than a power law (upsampled images) for the
    # narrow features.
    fit = fit_power_law(radii, profile, counts, bin_width=bw, degree=1)
    local_fit = fit_power_law(radii, profile, counts, bin_width=bw, degree=cfg.trend_degree)
    resid = spectrum.log_power - local_fit.log_trend(spectrum.radius)

    annuli = _annuli(radii, profile, fit, bw, cfg)
    guard = cfg.guard_bins * bw
    excluded = np.zeros((h, w), dtype=bool)
    for a in annuli:
        excluded |= _region_mask(a.region, h, w, guard)
    lines = _lines(spectrum, np.where(excluded, 0.0, resid), cfg)
    for line in lines:
        excluded |= _region_mask(line.region, h, w, guard)
    peaks = _peaks(spectrum, resid, excluded, cfg)

    ranked = sorted(annuli + lines + peaks, key=lambda r: -r.score_db)
    kept, dropped = ranked[: cfg.max_regions], ranked[cfg.max_regions :]
    while kept:
        spec = BandSpec.model_validate(
            {"regions": [r.region for r in kept], "allow_ill_posed": True}
        )
        rep = mask_report(spec, h, w)
        if not rep.covers_dc and rep.fraction <= 0.5 and not rep.empty_regions:
            break
        dropped.insert(0, kept.pop())
    return Analysis(
        height=h, width=w, fit=fit, radii=radii, profile=profile, regions=kept, dropped=dropped
    )


def analyze_image(image: np.ndarray, config: AnalyzeConfig | None = None) -> Analysis:
    """Analyze an ``(H, W)`` or ``(H, W, C)`` image in ``[0, 1]`` (validated like
    :func:`sagd_core.restore.restore` input: ``RestoreError`` for bad images)."""
    return analyze_chw(prepare_image(image).chw, config)


def _same_region(a: dict[str, Any], b: dict[str, Any], tol: float) -> bool:
    if a["kind"] != b["kind"]:
        return False
    if a["kind"] == "notch":
        d1 = math.hypot(a["fy"] - b["fy"], a["fx"] - b["fx"])
        d2 = math.hypot(a["fy"] + b["fy"], a["fx"] + b["fx"])
        return min(d1, d2) <= max(a["radius"], b["radius"], tol)
    if a["kind"] == "wedge":
        d = abs((a["angle_deg"] - b["angle_deg"] + 90.0) % 180.0 - 90.0)
        return bool(d <= max(a["tolerance_deg"], b["tolerance_deg"]))
    return bool(a["low"] < b["high"] and b["low"] < a["high"])


def combine_analyses(
    analyses: list[Analysis], *, min_support: float = 0.5, max_regions: int = 8
) -> BandSpec | None:
    """One spec for a folder: regions found (by kind and position) in at least ``min_support``
    of the images, widened to cover every matching detection."""
    if not analyses:
        return None
    tol = max(1.0 / min(a.height, a.width) for a in analyses) * 2
    clusters: list[list[DetectedRegion]] = []
    for analysis in analyses:
        for r in analysis.regions:
            for cl in clusters:
                if _same_region(cl[0].region, r.region, tol):
                    cl.append(r)
                    break
            else:
                clusters.append([r])
    need = max(1, math.ceil(min_support * len(analyses)))
    regions = []
    for cl in sorted(clusters, key=lambda c: -len(c)):
        if len(cl) < need:
            continue
        best = dict(max(cl, key=lambda r: r.score_db).region)
        if best["kind"] == "annulus":
            best["low"] = min(r.region["low"] for r in cl)
            best["high"] = max(r.region["high"] for r in cl)
        elif best["kind"] == "wedge":
            best["tolerance_deg"] = max(r.region["tolerance_deg"] for r in cl)
            best["low"] = min(r.region["low"] for r in cl)
            best["high"] = max(r.region["high"] for r in cl)
        else:
            best["radius"] = max(r.region["radius"] for r in cl)
        regions.append(best)
    if not regions:
        return None
    return BandSpec.model_validate({"regions": regions[:max_regions]})


__all__ = [
    "Analysis",
    "AnalyzeConfig",
    "DetectedRegion",
    "analyze_chw",
    "analyze_image",
    "combine_analyses",
]
