"""What becomes of candidate peaks in ``sagd analyze`` (DESIGN.md §2): peaks along one line through
DC become a wedge; peaks that belong to something else are dropped — those on a stripe line or
its aliases, weak sidebands of a much stronger peak, colour-only peaks of a colour image, and
peaks below the false-alarm threshold for the number of bins searched."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sagd_core.analysis.regions import DetectedRegion, log_to_db
from sagd_core.analysis.spectrum_stats import power_spectrum

#: Peaks this close in angle (degrees, through DC) lie on one line.
_COLLINEAR_DEG = 1.0
#: A line needs this many peaks on it to be stripes rather than a few interferences.
_COLLINEAR_MIN = 3
#: ... spread over at least this range of radii (cycles/pixel): a cluster is no line.
_COLLINEAR_MIN_SPAN = 0.05


def _wrap(v: float) -> float:
    return (v + 0.5) % 1.0 - 0.5


def _on_series(p: tuple[float, float], base: tuple[float, float], tol: float) -> bool:
    """Whether ``p`` (or its conjugate) is within ``tol`` of a multiple ``n · base``
    (``n ≤ 8``, folded into the grid)."""
    for n in range(1, 9):
        hy, hx = _wrap(n * base[0]), _wrap(n * base[1])
        if min(math.hypot(p[0] - hy, p[1] - hx), math.hypot(p[0] + hy, p[1] + hx)) < tol:
            return True
    return False


def harmonic_base(peaks: list[tuple[float, float]], tol: float) -> tuple[float, float] | None:
    """The fundamental of which all ``peaks`` are integer multiples (folded into the grid), or
    None: an interference and its harmonics, or an image's own periodic structure (a wall,
    a fence), lie on one line through DC too. The fundamental is the peak nearest DC divided
    by 1, 2 or 3 (the fundamental itself may be too near DC to be a peak), refined by least
    squares over the unfolded multiples: a peak's centroid is off by a fraction of a bin, and
    that error grows ``n`` times along the series."""
    near = min(peaks, key=lambda p: math.hypot(*p))
    for k in (1, 2, 3):
        base = (near[0] / k, near[1] / k)
        # Refine (twice: each pass matches more of the series) over the peaks that are plain
        # (unfolded) multiples along the base direction.
        for _ in range(2):
            norm = math.hypot(*base)
            pairs = []
            for p in peaks:
                along = abs(p[0] * base[0] + p[1] * base[1]) / norm
                n = round(along / norm)
                if n >= 1 and abs(along - n * norm) < tol:
                    pairs.append((n, along))
            if pairs:
                scale = sum(n * a for n, a in pairs) / sum(n * n for n, _ in pairs) / norm
                base = (base[0] * scale, base[1] * scale)
        if all(_on_series(p, base, tol) for p in peaks):
            return base
    return None


def collinear_peaks_to_lines(
    peaks: list[DetectedRegion],
    lines: list[DetectedRegion],
    bw: float,
    is_line: Callable[[dict[str, Any]], bool],
    min_radius: float = 0.0,
) -> tuple[list[DetectedRegion], list[DetectedRegion]]:
    """Stripes whose line stands out only in places show up as several peaks along one line
    through DC: three or more such peaks (not a harmonic series, which periodic interference
    makes) become one wedge when ``is_line`` confirms it; otherwise they stay peaks. Three or
    more harmonics of a fundamental nearer DC than ``min_radius`` are dropped: the image's
    own large periodic structure (brick courses, a fence), whose fundamental is no peak for
    the same reason (:class:`AnalyzeConfig` ``peak_min_radius``)."""

    def angle(r: DetectedRegion) -> float:
        return math.degrees(math.atan2(r.region["fy"], r.region["fx"])) % 180.0

    rest = sorted(peaks, key=angle)
    groups: list[list[DetectedRegion]] = []
    for peak in rest:
        if groups and abs(angle(peak) - angle(groups[-1][-1])) <= _COLLINEAR_DEG:
            groups[-1].append(peak)
        else:
            groups.append([peak])
    if len(groups) > 1 and angle(groups[0][0]) + 180.0 - angle(groups[-1][-1]) <= _COLLINEAR_DEG:
        groups[0] = groups.pop() + groups[0]
    kept: list[DetectedRegion] = []
    new_lines = list(lines)
    for group in groups:
        radii = [math.hypot(p.region["fy"], p.region["fx"]) for p in group]
        points = [(p.region["fy"], p.region["fx"]) for p in group]
        base = harmonic_base(points, 2.0 * bw) if len(group) >= _COLLINEAR_MIN else None
        if base is not None and math.hypot(*base) < min_radius:
            continue
        if len(group) < _COLLINEAR_MIN or base is not None:
            kept += group
            continue
        angles = np.unwrap(np.radians([angle(p) for p in group]) * 2) / 2
        centre = math.degrees(float(np.mean(angles))) % 180.0
        half_span = math.degrees(float(np.ptp(angles))) / 2
        region = {
            "kind": "wedge",
            "angle_deg": round(centre, 3),
            "tolerance_deg": round(min(max(half_span + 1.0, 2.0), 45.0), 3),
            "low": round(max(min(radii) - 2 * bw, bw), 6),
            "high": round(max(radii) + 2 * bw, 6),
        }
        if max(radii) - min(radii) < _COLLINEAR_MIN_SPAN or not is_line(region):
            kept += group
            continue
        new_lines.append(DetectedRegion(region, max(p.score_db for p in group), "line"))
    return kept, new_lines


#: A detected line's direction is known to a fraction of a degree (rays every half degree):
#: far along its wrapped continuation that error grows, so the band around an alias widens by
#: this much per cycle/pixel along the line (about 0.6°).
ALIAS_SLOPE = 0.01


def wrapped_line(region: dict[str, Any], h: int, w: int, width: float) -> np.ndarray:
    """Full-grid bins within ``width`` (cycles/pixel) of a wedge's line continued beyond the
    edge of the grid, where it wraps around (stripes that are not axis-aligned alias there):
    peaks on it belong to the stripes."""
    theta = math.radians(region["angle_deg"])
    u = np.array([math.sin(theta), math.cos(theta)])
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    out = np.zeros((h, w), dtype=bool)
    # The line t·u (mod 1) as straight pieces: each crossing of the grid's edge shifts it by an
    # integer vector; a few wraps cover what a linearly interpolated profile puts there.
    for sy in range(-2, 3):
        for sx in range(-2, 3):
            if sy == 0 and sx == 0:
                continue
            # distance from f + (sy, sx) to the line through DC along u
            py, px = fy + sy, fx + sx
            along = np.abs(py * u[0] + px * u[1])
            dist = np.abs(py * u[1] - px * u[0])
            out |= (dist < width + along * ALIAS_SLOPE) & (along > 0.5) & (along < 3.0)
    return out


#: A peak this far (dB) below a stronger one within :data:`_SIDEBAND_DIST` of it is a
#: sideband of that one: a multiplicative screen modulates the image's own peaks and edges
#: around each of its frequencies.
_SIDEBAND_DB = 18.0
_SIDEBAND_DIST = 0.06


def without_sidebands(peaks: list[DetectedRegion]) -> list[DetectedRegion]:
    """The peaks that are no weak sideband of a much stronger neighbour (conjugates included)."""

    def near(a: dict[str, Any], b: dict[str, Any]) -> bool:
        d1 = math.hypot(a["fy"] - b["fy"], a["fx"] - b["fx"])
        d2 = math.hypot(a["fy"] + b["fy"], a["fx"] + b["fx"])
        return min(d1, d2) < _SIDEBAND_DIST

    return [
        p
        for p in peaks
        if not any(
            q.score_db - p.score_db >= _SIDEBAND_DB and near(p.region, q.region) for q in peaks
        )
    ]


#: A colour image's peak may lose at most this much (dB) of its contrast in the luma
#: (Rec. 601) spectrum against the channel-averaged one.
_LUMA_LOSS_DB = 6.0
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _ring_contrast(log_power: np.ndarray, fy: float, fx: float) -> float:
    """How far (dB) the top of a peak (its centroid ± 1 bin) stands above the median of the
    bins around it beyond its main lobe (a 9×9 window without its central 5×5)."""
    h, w = log_power.shape
    iy, ix = round(fy * h), round(fx * w)
    window = log_power[np.ix_(np.arange(iy - 4, iy + 5) % h, np.arange(ix - 4, ix + 5) % w)]
    ring = np.ones((9, 9), dtype=bool)
    ring[2:7, 2:7] = False
    return log_to_db(window[3:6, 3:6].max() - np.median(window[ring]))


def in_luma(
    peaks: list[DetectedRegion], chw: np.ndarray, log_power: np.ndarray
) -> list[DetectedRegion]:
    """The peaks of a colour image that keep their contrast in its luma (``log_power``: the
    channel-averaged spectrum they were found in). Interference from a screen, a scanner or
    a display is in every channel alike; JPEG chroma subsampling and demosaicing leave peaks
    in the colour differences only (on an axis, near Nyquist), which belong to the camera and
    the file format (they vanish in a grayscale copy)."""
    if chw.shape[0] != 3 or not peaks:
        return peaks
    luma_image = np.tensordot(np.asarray(_LUMA_WEIGHTS), chw, axes=1)[None]
    luma = power_spectrum(luma_image).log_power
    kept = []
    for p in peaks:
        fy, fx = p.region["fy"], p.region["fx"]
        loss = _ring_contrast(log_power, fy, fx) - _ring_contrast(luma, fy, fx)
        if loss <= _LUMA_LOSS_DB:
            kept.append(p)
    return kept


def false_alarm_db(bins: int, false_alarms: float) -> float:
    """The excess (dB) over a local median that ``false_alarms`` of ``bins`` independent
    periodogram bins exceed by chance: a bin is exponential about its mean, so it exceeds
    ``t`` times its median with probability ``2^-t``; ``t = log2(bins / false_alarms)``."""
    return 10.0 * math.log10(math.log2(bins / false_alarms))


def on_line(fy: float, fx: float, region: dict[str, Any], width: float) -> bool:
    """Whether the frequency ``(fy, fx)`` lies on a wedge's line through DC (within its
    tolerance) or within ``width`` of the line's continuation wrapped around the grid (widened
    by :data:`ALIAS_SLOPE` along it)."""
    theta = math.radians(region["angle_deg"])
    uy, ux = math.sin(theta), math.cos(theta)
    angle = math.degrees(math.atan2(fy, fx)) % 180.0
    if abs((angle - region["angle_deg"] + 90.0) % 180.0 - 90.0) <= region["tolerance_deg"]:
        return True
    for sy in range(-2, 3):
        for sx in range(-2, 3):
            py, px = fy + sy, fx + sx
            along = abs(py * uy + px * ux)
            if abs(py * ux - px * uy) < width + along * ALIAS_SLOPE and along < 3.0:
                return True
    return False


def off_lines(
    peaks: list[DetectedRegion], lines: list[DetectedRegion], width: float
) -> list[DetectedRegion]:
    """The peaks on no line: stripes put their power along the whole line through DC (and its
    aliases), so peaks there are the stripes' own, wherever the line stood out."""
    return [
        p
        for p in peaks
        if not any(on_line(p.region["fy"], p.region["fx"], ln.region, width) for ln in lines)
    ]


__all__ = [
    "collinear_peaks_to_lines",
    "false_alarm_db",
    "harmonic_base",
    "in_luma",
    "off_lines",
    "on_line",
    "without_sidebands",
    "wrapped_line",
]
