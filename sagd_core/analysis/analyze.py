"""Band detection (``sagd analyze``): find frequency regions standing above an image's spectral
trend and emit them as a :class:`BandSpec` (DESIGN.md §2).

1. Log periodogram of the Hann-windowed image (:mod:`spectrum_stats`), channels averaged.
2. Radial profile (median per one-bin ring) and a robust power-law fit ``log P ≈ a + b log r``.
3. **Annuli**: bands of rings whose median stands ``annulus_db`` above a local baseline (the
   rings just outside on both sides), with a step at both edges (band-limited noise raises whole
   rings; a median ignores isolated peaks and lines) — in the whole image's profile and in the
   profile of its *floor spectrum* (per frequency, a low percentile over tiles), where noise
   that every tile holds stands out from edges and objects that only some hold, and in the
   per-tile radial profiles, where the *median* tile shows a band with steps at both edges
   (:mod:`tile_bands`: bands several dB under the image's own power at low frequencies), and
   in the tiles of the image's Laplacian with its edges left out (:mod:`residual_bands`:
   bands under a scene's dense edges).
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
   wedge; three or more harmonics of a fundamental nearer DC than ``peak_min_radius`` are the
   image's own periodic structure (brick courses) and are dropped. Dropped too: peaks on a
   line or its aliases (the stripes' own), weak sidebands of a much stronger peak (a
   multiplicative screen modulating the image) and copies of the image's own spectrum that a
   screen peak carries (:mod:`modulation`), peaks of a colour image that its luma does not
   hold (JPEG chroma, demosaicing), and peaks below the false-alarm threshold for the number
   of bins searched (``peak_false_alarms`` per image).
6. **Spread** (:mod:`stationarity`): a peak's or an annulus' excess over its surroundings
   must spread over the image's tiles (``peak_min_spread``, ``annulus_min_spread``):
   interference and noise are everywhere, a photo's own texture is local. A peak may instead
   spread evenly once divided by the tiles' brightness (a screen multiplies the image, so it
   is weak in dark parts). In the tiles, the bins of strong peaks are left out of the ring
   medians (at a tile's resolution a screen's peaks fill much of a ring).

Thresholds are in dB of power. Regions are ranked by how far they stand out; at most
``max_regions`` are kept, and the weakest are dropped while the union would cover DC or more than
half of the spectrum.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from sagd_core.analysis.annuli import find_annuli, sector_profiles
from sagd_core.analysis.combine import combine_analyses
from sagd_core.analysis.config import AnalyzeConfig
from sagd_core.analysis.line_checks import is_stripe_line
from sagd_core.analysis.lines import line_in_floor, scanned_lines, trend_lines
from sagd_core.analysis.modulation import without_image_copies
from sagd_core.analysis.peak_checks import (
    collinear_peaks_to_lines,
    false_alarm_db,
    in_luma,
    off_lines,
    without_sidebands,
    wrapped_line,
)
from sagd_core.analysis.regions import DetectedRegion
from sagd_core.analysis.regions import db_to_log as _db_to_log
from sagd_core.analysis.regions import log_to_db as _log_to_db
from sagd_core.analysis.residual_bands import residual_annuli
from sagd_core.analysis.result import Analysis
from sagd_core.analysis.spectrum_stats import (
    FLOOR_TILE,
    Spectrum,
    fit_power_law,
    floor_spectrum,
    power_spectrum,
    radial_profile,
    tile_brightness,
    tile_powers,
)
from sagd_core.analysis.stationarity import (
    TileSpectra,
    band_excess,
    participation,
    peak_spread,
    tile_bins,
)
from sagd_core.analysis.tile_bands import tile_annuli
from sagd_core.restore.inputs import prepare_image
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.masks import band_mask, mask_report


def _without_peaks(spectrum: Spectrum, bins: np.ndarray, background: np.ndarray) -> Spectrum:
    """``spectrum`` with its peak ``bins`` (standing ``peak_db`` above ``background``, its 7×7
    median) and the bins next to them replaced by that median."""
    peaks = ndimage.binary_dilation(bins, iterations=2)
    return Spectrum(
        log_power=np.where(peaks, background, spectrum.log_power), fy=spectrum.fy, fx=spectrum.fx
    )


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


def _region_mask(region: dict[str, Any], h: int, w: int, grow: float = 0.0) -> np.ndarray:
    """Full-grid mask of one region, widened by ``grow`` cycles/pixel."""
    spec = BandSpec.model_validate(
        {"regions": [region], "allow_ill_posed": True, "softness": min(grow, 0.25)}
    )
    return band_mask(spec, h, w, half=False) > 0


def _overlaps_any(annulus: DetectedRegion, others: list[DetectedRegion]) -> bool:
    lo, hi = annulus.region["low"], annulus.region["high"]
    return any(lo < a.region["high"] and a.region["low"] < hi for a in others)


def _spread(detected: DetectedRegion, tile_grid: TileSpectra) -> float:
    """How evenly a peak's or an annulus' excess spreads over the tiles (:mod:`stationarity`)."""
    r = detected.region
    if r["kind"] == "notch":
        return peak_spread(tile_grid, r["fy"], r["fx"])
    return participation(band_excess(tile_grid, r["low"], r["high"]))


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
    peak_bins = spectrum.log_power - background > _db_to_log(cfg.peak_db)
    smooth = _without_peaks(spectrum, peak_bins, background)
    _, a_profile, _ = radial_profile(smooth)
    # Ring medians of small images are noisier (fewer bins per ring): the threshold grows as
    # 1/√side below 256 px (the floor spectrum's rings are medians over many tiles).
    small = max(1.0, math.sqrt(256.0 * bw))
    annuli = find_annuli(radii, a_profile, bw, cfg, sector_profiles(smooth, radii), scale=small)
    tiles = tile_powers(chw)
    floor = floor_spectrum(chw, tiles)
    # At a tile's resolution a strong peak (and the copies of the image a screen's peak
    # carries) fills much of a ring: the tile rings leave the peaks' bins out.
    in_tiles = tile_bins(h, w, peak_bins, FLOOR_TILE) if tiles is not None else None
    tile_grid = (
        TileSpectra.from_half(tiles, in_tiles, tile_brightness(chw)) if tiles is not None else None
    )
    if floor is not None:  # bands of noise under strong image content (module docstring)
        f_radii, f_profile, _ = radial_profile(floor, in_tiles)
        f_sectors = sector_profiles(floor, f_radii, in_tiles)
        extras = find_annuli(f_radii, f_profile, floor.bin_width, cfg, f_sectors)
        annuli += [a for a in extras if not _overlaps_any(a, annuli)]
    if tile_grid is not None:
        extras = tile_annuli(tile_grid, cfg.tile_band_db)
        annuli += [a for a in extras if not _overlaps_any(a, annuli)]
        annuli = [a for a in annuli if _spread(a, tile_grid) >= cfg.annulus_min_spread]
        extras = residual_annuli(chw, cfg.residual_band_db, cfg.residual_min_spread, in_tiles)
        annuli += [a for a in extras if not _overlaps_any(a, annuli)]
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
        return line_in_floor(floor, region) and is_stripe_line(spectrum, region, min_run)

    lines = [
        line
        for line in trend_lines(spectrum, np.where(excluded, 0.0, resid), cfg)
        if is_line(line.region)
    ]
    if floor is not None:
        lines += scanned_lines(spectrum, lines, min_run, is_line)
    for line in lines:
        excluded |= _region_mask(line.region, h, w, guard)
        excluded |= wrapped_line(line.region, h, w, guard + bw)
    peaks = _peaks(spectrum, resid, excluded, cfg, background)
    # Peaks along one line are evidence of a line in themselves: only the floor check.
    peaks, lines = collinear_peaks_to_lines(
        peaks,
        lines,
        bw,
        lambda region: floor is None or line_in_floor(floor, region),
        cfg.peak_min_radius,
    )
    peaks = in_luma(without_sidebands(off_lines(peaks, lines, guard + bw)), chw, spectrum.log_power)
    peaks = without_image_copies(peaks, chw)
    # Half the grid is searched (the other half holds the conjugates).
    significant = false_alarm_db(h * w // 2, cfg.peak_false_alarms)
    peaks = [p for p in peaks if p.score_db >= significant]
    if tile_grid is not None:
        peaks = [p for p in peaks if _spread(p, tile_grid) >= cfg.peak_min_spread]

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


__all__ = [
    "Analysis",
    "AnalyzeConfig",
    "DetectedRegion",
    "analyze_chw",
    "analyze_image",
    "combine_analyses",
]
