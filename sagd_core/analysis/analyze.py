"""Band detection (``sagd analyze``): find frequency regions standing above an image's spectral
trend and emit them as a :class:`BandSpec` (DESIGN.md §2).

1. Log periodogram of the Hann-windowed image (:mod:`spectrum_stats`), channels averaged.
2. Radial profile (median per one-bin ring) and a robust power-law fit ``log P ≈ a + b log r``.
3. **Annuli**: bands of rings whose median stands ``annulus_db`` above a local baseline (the
   rings just outside on both sides), with a step at both edges (band-limited noise raises whole
   rings; a median ignores isolated peaks and lines) — in the whole image's profile and in the
   profile of its *floor spectrum* (per frequency, a low percentile over tiles), where noise
   that every tile holds stands out from edges and objects that only some hold.
4. **Lines** (stripe noise puts its energy on a line through DC, perpendicular to the stripes):
   rays from DC sampled every half degree; a ray whose residual stays ``line_db`` above the trend
   over a long run of radii is a line; adjacent rays merge into one ``wedge``. Every line must
   show in the floor spectrum and pass :mod:`line_checks` (thin against the same rings beside
   it, white along its length, reaching high frequencies): an image's own edges, walls and
   axis content fail. Lines too weak to stand above the trend are found by their contrast
   against the rings beside them (:func:`line_checks.scan_lines`).
5. **Peaks** (periodic interference): bins ``peak_db`` above a 7×7 median background and
   ``peak_trend_db`` above the trend, outside annuli and wedges and at least
   ``peak_min_radius`` from DC, grouped into connected components; each conjugate pair becomes
   one ``notch``. Three or more peaks on one line through DC (not a harmonic series) become a
   wedge. Dropped: peaks on a line or its aliases (the stripes' own), weak sidebands of a much
   stronger peak (a multiplicative screen modulating the image), peaks of a colour image that
   its luma does not hold (JPEG chroma, demosaicing), and peaks below the false-alarm
   threshold for the number of bins searched (``peak_false_alarms`` per image).

Thresholds are in dB of power. Regions are ranked by how far they stand out; at most
``max_regions`` are kept, and the weakest are dropped while the union would cover DC or more than
half of the spectrum.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from sagd_core.analysis.line_checks import is_stripe_line, scan_lines
from sagd_core.analysis.peak_checks import (
    collinear_peaks_to_lines,
    false_alarm_db,
    in_luma,
    off_lines,
    on_line,
    without_sidebands,
    wrapped_line,
)
from sagd_core.analysis.regions import DetectedRegion
from sagd_core.analysis.regions import db_to_log as _db_to_log
from sagd_core.analysis.regions import log_to_db as _log_to_db
from sagd_core.analysis.spectrum_stats import (
    PowerLawFit,
    Spectrum,
    fit_power_law,
    floor_spectrum,
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
    guard_bins: float = Field(
        default=2.0, ge=0.0, description="peaks this near an annulus or wedge belong to it"
    )


#: Rings beyond this radius (cycles/pixel) hold few bins (the corners of the grid).
R_MAX_RING = 0.6


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
    radii: np.ndarray,
    profile: np.ndarray,
    bw: float,
    cfg: AnalyzeConfig,
    sectors: np.ndarray | None = None,
    *,
    scale: float = 1.0,
) -> list[DetectedRegion]:
    """Rings raised above a *local* baseline: for every candidate band ``[a, b)`` of rings, the
    mean of the profile inside against the straight line (in log-log) through the means of the
    rings just outside on both sides. A single power law for the whole spectrum is bent by
    the band itself and by the image's own curvature, so it hides bands of a few dB; the local
    baseline does not. Both edges must step (band-limited noise has edges; an image's own
    bump does not), the band must be raised all around (``sectors``: the same profile per
    angular sector; a few strong peaks raise only some), and the best-scoring disjoint bands
    are kept."""
    start = max(cfg.min_radius_bins * bw, cfg.annulus_min_radius)
    valid = np.flatnonzero((radii >= start) & (radii <= R_MAX_RING))
    if valid.size < 8:
        return []
    lo_i, hi_i = int(valid[0]), int(valid[-1]) + 1
    logr = np.log(radii)
    prof = profile
    csum = np.concatenate([[0.0], np.cumsum(prof)])
    lsum = np.concatenate([[0.0], np.cumsum(logr)])

    thr = _db_to_log(cfg.annulus_db * scale)
    edge_thr = _db_to_log(cfg.annulus_db * scale / 2)
    min_len = max(cfg.annulus_min_bins, 3)
    max_len = max(min_len + 1, int(0.3 / bw))
    n = prof.size
    padded = np.concatenate([prof, prof[-1:], prof[-1:]])
    before2 = np.full(n + 1, -np.inf)  # mean of the two rings before index i
    before2[2:] = (prof[:-1] + prof[1:])[: n - 1] / 2.0
    after2 = (padded[: n + 1] + padded[1 : n + 2]) / 2.0  # mean of rings i, i + 1
    found: list[tuple[float, int, int]] = []
    for a in range(lo_i + 2, hi_i - min_len):
        rise = after2[a] - before2[a]
        if rise < edge_thr:
            continue
        bs = np.arange(a + min_len, min(a + max_len, hi_i - 1) + 1)
        if bs.size == 0:
            continue
        flank = np.maximum(3, (bs - a) // 2)
        la = np.maximum(lo_i, a - flank)
        rb = np.minimum(hi_i, bs + flank)
        ok = (a - la >= 2) & (rb - bs >= 2) & (before2[bs] - after2[bs] >= edge_thr)
        if not ok.any():
            continue
        bs, la, rb = bs[ok], la[ok], rb[ok]
        yl = (csum[a] - csum[la]) / (a - la)
        yr = (csum[rb] - csum[bs]) / (rb - bs)
        xl = (lsum[a] - lsum[la]) / (a - la)
        xr = (lsum[rb] - lsum[bs]) / (rb - bs)
        x_in = (lsum[bs] - lsum[a]) / (bs - a)
        y_in = (csum[bs] - csum[a]) / (bs - a)
        score = y_in - (yl + (yr - yl) * (x_in - xl) / (xr - xl))
        for k in np.flatnonzero(score >= thr):
            found.append((float(score[k]), a, int(bs[k])))
    out: list[DetectedRegion] = []
    taken: list[tuple[int, int]] = []
    for score, a, b in sorted(found, reverse=True):
        if any(a < tb and ta < b for ta, tb in taken):
            continue
        if sectors is not None and not _raised_all_around(sectors, logr, a, b, lo_i, hi_i, thr):
            continue
        taken.append((a, b))
        low = max(float(radii[a]) - bw / 2, start - bw / 2)
        high = float(radii[b - 1]) + bw / 2
        out.append(
            DetectedRegion(
                {"kind": "annulus", "low": round(low, 6), "high": round(high, 6)},
                _log_to_db(score),
                "annulus",
            )
        )
        if len(out) >= 2:
            break
    return out


#: Angular sectors (over 180°) of the all-around check, and how many must show the band.
SECTORS = 8
SECTORS_NEEDED = 6


def sector_profiles(spectrum: Spectrum, radii: np.ndarray) -> np.ndarray:
    """``(SECTORS, rings)``: the median log power per one-bin ring within each angular sector
    (NaN where a sector holds no bin of a ring)."""
    bw = spectrum.bin_width
    ring = np.rint(spectrum.radius / bw - 0.5).astype(int).ravel()
    angle = np.degrees(np.arctan2(spectrum.fy, spectrum.fx)) % 180.0
    sector = np.broadcast_to(
        np.minimum((angle / (180.0 / SECTORS)).astype(int), SECTORS - 1), spectrum.shape
    ).ravel()
    values = spectrum.log_power.ravel()
    out = np.full((SECTORS, radii.size), np.nan)
    order = np.lexsort((ring, sector))
    keys = sector[order] * (radii.size + 1) + np.clip(ring[order], 0, radii.size)
    bounds = np.flatnonzero(np.diff(keys)) + 1
    for chunk in np.split(order, bounds):
        sec, rg = int(sector[chunk[0]]), int(ring[chunk[0]])
        if 0 <= rg < radii.size:
            out[sec, rg] = float(np.median(values[chunk]))
    return out


def _raised_all_around(
    sectors: np.ndarray, logr: np.ndarray, a: int, b: int, lo_i: int, hi_i: int, thr: float
) -> bool:
    """Whether the band ``[a, b)`` stands ``thr / 2`` above its local baseline in at least
    :data:`SECTORS_NEEDED` sectors."""
    flank = max(3, (b - a) // 2)
    la, rb = max(lo_i, a - flank), min(hi_i, b + flank)
    good = 0
    for prof in sectors:
        left, right, inside = prof[la:a], prof[b:rb], prof[a:b]
        if np.isnan(left).all() or np.isnan(right).all() or np.isnan(inside).all():
            continue
        yl, yr = np.nanmean(left), np.nanmean(right)
        xl, xr = logr[la:a].mean(), logr[b:rb].mean()
        base = yl + (yr - yl) * (logr[a:b].mean() - xl) / (xr - xl)
        if np.nanmean(inside) - base >= thr / 2:
            good += 1
    return good >= SECTORS_NEEDED


def _without_peaks(spectrum: Spectrum, cfg: AnalyzeConfig, background: np.ndarray) -> Spectrum:
    """``spectrum`` with every bin standing ``peak_db`` above ``background`` (its 7×7 median)
    and the bins next to it replaced by that median."""
    logp = spectrum.log_power
    peaks = ndimage.binary_dilation(logp - background > _db_to_log(cfg.peak_db), iterations=2)
    return Spectrum(log_power=np.where(peaks, background, logp), fy=spectrum.fy, fx=spectrum.fx)


def _lines(spectrum: Spectrum, resid: np.ndarray, cfg: AnalyzeConfig) -> list[DetectedRegion]:
    h, w = spectrum.shape
    bw = spectrum.bin_width
    # Rays run to the edge of the square grid (an oblique line is up to √2 longer than an axis
    # line); samples beyond the edge are masked out of the runs.
    k = np.arange(math.ceil(cfg.min_radius_bins), int(math.sqrt(0.5) / bw) + 1)
    radii = k * bw
    step = 0.5
    thetas = np.arange(0.0, 180.0, step)
    t = np.radians(thetas)[:, None]
    fy_ray, fx_ray = radii[None, :] * np.sin(t), radii[None, :] * np.cos(t)
    inside = (np.abs(fy_ray) <= 0.5) & (np.abs(fx_ray) <= 0.5)
    iy = np.rint(fy_ray * h).astype(int) % h
    ix = np.rint(fx_ray * w).astype(int) % w
    values = np.where(inside, resid[iy, ix], -np.inf)  # (angles, radii)
    flags = values > _db_to_log(cfg.line_db)
    min_run = max(4, round(cfg.line_min_fraction * int(0.5 / bw)))
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
    spectrum: Spectrum,
    resid: np.ndarray,
    excluded: np.ndarray,
    cfg: AnalyzeConfig,
    background: np.ndarray,
) -> list[DetectedRegion]:
    """Peaks standing ``peak_db`` above ``background`` (the 7×7 median of the log power)."""
    h, w = spectrum.shape
    bw = spectrum.bin_width
    logp = spectrum.log_power
    local = logp - background
    cand = (
        (local > _db_to_log(cfg.peak_db))
        & (resid > _db_to_log(cfg.peak_trend_db))
        & (spectrum.radius >= max(cfg.min_radius_bins * bw, cfg.peak_min_radius, 4.0 * bw))
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


#: A line must stand this far (dB) above the rays beside it in the floor spectrum.
_FLOOR_LINE_DB = 3.0


def _line_in_floor(floor: Spectrum, region: dict[str, Any]) -> bool:
    """Whether a wedge's line shows in the floor spectrum: the median log power along its ray
    (over its radial range) against the medians along rays 6–12° to either side."""
    t = floor.shape[0]
    low = max(region["low"], 2.0 / t)
    high = min(region["high"], 0.5)
    radii = np.arange(low, high, 0.5 / t)
    if radii.size < 3:
        return True  # too short to judge at the floor's resolution: keep it

    def ray(angle: float) -> float:
        a = math.radians(angle)
        iy = np.rint(radii * math.sin(a) * t).astype(int) % t
        ix = np.rint(radii * math.cos(a) * t).astype(int) % t
        return float(np.median(floor.log_power[iy, ix]))

    centre = ray(region["angle_deg"])
    beside = [ray(region["angle_deg"] + d) for d in (-12, -9, -6, 6, 9, 12)]
    return centre - float(np.median(beside)) >= _db_to_log(_FLOOR_LINE_DB)


def _scanned_lines(
    spectrum: Spectrum,
    lines: list[DetectedRegion],
    min_run: int,
    is_line: Callable[[dict[str, Any]], bool],
) -> list[DetectedRegion]:
    """Lines that :func:`scan_lines` finds by their contrast against the rings beside them
    and that no line found against the trend covers already."""
    bw = spectrum.bin_width
    out: list[DetectedRegion] = []
    for angle, tolerance, ev in scan_lines(spectrum, min_run):
        region = {
            "kind": "wedge",
            "angle_deg": round(angle, 3),
            "tolerance_deg": round(tolerance, 3),
            "low": round(max(ev.run_low - bw, 2.0 * bw), 6),
            "high": round(ev.run_high + bw, 6),
        }
        if any(
            on_line(
                math.sin(math.radians(angle)) * 0.25,
                math.cos(math.radians(angle)) * 0.25,
                ln.region,
                0.0,
            )
            for ln in lines + out
        ):
            continue
        if is_line(region):
            out.append(DetectedRegion(region, ev.median_contrast_db, "line"))
    return out


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

    # The peaks' background: a separable 7×7 median (rows, then columns), within 0.2 dB of
    # the full one on a periodogram and four times faster.
    rows = ndimage.median_filter(spectrum.log_power, size=(1, 7), mode="wrap")
    background = ndimage.median_filter(rows, size=(7, 1), mode="wrap")
    # Annuli are judged on the spectrum without its peaks (replaced by their surroundings): a
    # few strong interferences and their harmonics must not raise whole rings.
    smooth = _without_peaks(spectrum, cfg, background)
    _, a_profile, _ = radial_profile(smooth)
    # Ring medians of small images are noisier (fewer bins per ring): the threshold grows as
    # 1/√side below 256 px (the floor spectrum's rings are medians over many tiles).
    small = max(1.0, math.sqrt(256.0 * bw))
    annuli = _annuli(radii, a_profile, bw, cfg, sector_profiles(smooth, radii), scale=small)
    floor = floor_spectrum(chw)
    if floor is not None:  # bands of noise under strong image content (module docstring)
        f_radii, f_profile, _ = radial_profile(floor)
        f_sectors = sector_profiles(floor, f_radii)
        for extra in _annuli(f_radii, f_profile, floor.bin_width, cfg, f_sectors):
            lo, hi = extra.region["low"], extra.region["high"]
            if not any(lo < a.region["high"] and a.region["low"] < hi for a in annuli):
                annuli.append(extra)
    guard = cfg.guard_bins * bw
    excluded = np.zeros((h, w), dtype=bool)
    for a in annuli:
        excluded |= _region_mask(a.region, h, w, guard)
    min_run = max(4, round(cfg.line_min_fraction * int(0.5 / bw)))

    def is_line(region: dict[str, Any]) -> bool:
        # Stripes are in every tile (a straight edge only in some), thin and white along
        # their length (line_checks; in small images the rings beside a line are too short
        # to judge, and the trend test alone decides).
        if floor is None:
            return True
        return _line_in_floor(floor, region) and is_stripe_line(spectrum, region, min_run)

    lines = [
        line
        for line in _lines(spectrum, np.where(excluded, 0.0, resid), cfg)
        if is_line(line.region)
    ]
    if floor is not None:
        lines += _scanned_lines(spectrum, lines, min_run, is_line)
    for line in lines:
        excluded |= _region_mask(line.region, h, w, guard)
        excluded |= wrapped_line(line.region, h, w, guard + bw)
    peaks = _peaks(spectrum, resid, excluded, cfg, background)
    # Peaks along one line are evidence of a line in themselves: only the floor check.
    peaks, lines = collinear_peaks_to_lines(
        peaks, lines, bw, lambda region: floor is None or _line_in_floor(floor, region)
    )
    peaks = in_luma(without_sidebands(off_lines(peaks, lines, guard + bw)), chw, spectrum.log_power)
    # Half the grid is searched (the other half holds the conjugates).
    significant = false_alarm_db(h * w // 2, cfg.peak_false_alarms)
    peaks = [p for p in peaks if p.score_db >= significant]

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
