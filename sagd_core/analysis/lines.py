"""Stripe lines in a spectrum (``sagd analyze``, DESIGN.md §2): rays from DC whose residual
stands above the radial trend over a long run of radii (:func:`trend_lines`), lines found by
their contrast against the rings beside them (:func:`scanned_lines`), and the check that a line
shows in the floor spectrum, as stripes in every tile do (:func:`line_in_floor`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sagd_core.analysis.config import AnalyzeConfig
from sagd_core.analysis.line_checks import cyclic_groups, scan_lines
from sagd_core.analysis.peak_checks import on_line
from sagd_core.analysis.regions import DetectedRegion
from sagd_core.analysis.regions import db_to_log as _db_to_log
from sagd_core.analysis.regions import log_to_db as _log_to_db
from sagd_core.analysis.spectrum_stats import Spectrum


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True values."""
    out, start = [], None
    for i, f in enumerate(np.append(flags, False)):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    return out


def trend_lines(spectrum: Spectrum, resid: np.ndarray, cfg: AnalyzeConfig) -> list[DetectedRegion]:
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
        runs = [(a, b) for a, b in runs_of(flags[j]) if b - a >= min_run]
        if runs:
            a, b = max(runs, key=lambda ab: ab[1] - ab[0])
            hits[j] = (a, b, float(np.median(values[j, a:b])))
    # Group adjacent angles (cyclic over 180°).
    out = []
    for g in cyclic_groups(hits, thetas.size):
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


#: A line must stand this far (dB) above the rays beside it in the floor spectrum.
_FLOOR_LINE_DB = 3.0


def line_in_floor(floor: Spectrum, region: dict[str, Any]) -> bool:
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


def scanned_lines(
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


__all__ = ["line_in_floor", "runs_of", "scanned_lines", "trend_lines"]
