"""Checks that a candidate spectral line is stripe noise and not an image's own straight
structure (``sagd analyze``, DESIGN.md §2).

A line found against the radial trend (:func:`sagd_core.analysis.analyze._lines`) may be the
image's own anisotropy: long edges, a brick wall's mortar, a tower, the axis content of a
photo. Stripe noise differs in two ways that a photo's lines rarely share:

1. **Thin along its whole length.** The line stands well above the bins *on the same ring*
   a few bins to either side (:data:`SIDE_OFFSETS_BINS`), over a long run of radii: an image's
   anisotropy raises a whole sector, and a near-DC ridge is short.
2. **White along its length.** A stripe profile is (near) white, so the line's own power falls
   slowly with frequency (interpolated oblique stripes roll off as a sinc²); an image's edge or
   texture falls like the rest of the image, ``r^-2`` to ``r^-4`` (:data:`MIN_LINE_SLOPE`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sagd_core.analysis.spectrum_stats import Spectrum

#: Perpendicular distances (bins) of the comparison samples on the same ring.
SIDE_OFFSETS_BINS = (4.0, 6.0, 8.0)
#: A radius is on the line when it stands this far (dB) above the ring beside it.
CONTRAST_DB = 6.0
#: The run of such radii must reach this median contrast (dB).
RUN_MEDIAN_DB = 9.0
#: The line's power may fall no faster than ``r^MIN_LINE_SLOPE`` over the run.
MIN_LINE_SLOPE = -3.5
#: The run must reach this radius (cycles/pixel): stripe noise is white, so its line is
#: clearest at high frequencies; a line that fades out before is an image's own structure.
MIN_RUN_HIGH = 0.25
#: A line found by :func:`scan_lines` alone must run to this fraction of the grid's edge.
SCAN_REACH = 0.8


@dataclass(frozen=True)
class LineEvidence:
    """How a candidate line stands against the ring beside it."""

    run_low: float  # cycles/pixel: where the longest run of contrast starts
    run_high: float  # and where it ends
    run_samples: int
    median_contrast_db: float
    slope: float  # d log P / d log r of the line's own power over the run


def cyclic_groups(indices: Iterable[int], count: int, gap: int = 2) -> list[list[int]]:
    """``indices`` of a cyclic axis of ``count`` directions (over 180°) grouped into runs whose
    neighbours are at most ``gap`` apart, the run across the wrap joined into one."""
    groups: list[list[int]] = []
    for j in sorted(indices):
        if groups and j - groups[-1][-1] <= gap:
            groups[-1].append(j)
        else:
            groups.append([j])
    if len(groups) > 1 and groups[0][0] + count - groups[-1][-1] <= gap:
        groups[0] = groups.pop() + groups[0]
    return groups


def _sample(spectrum: Spectrum, radii: np.ndarray, angles: np.ndarray) -> np.ndarray:
    h, w = spectrum.shape
    iy = np.rint(radii * np.sin(angles) * h).astype(int) % h
    ix = np.rint(radii * np.cos(angles) * w).astype(int) % w
    return spectrum.log_power[iy, ix]


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """``[start, stop)`` of the longest run of True values (``(0, 0)`` when none)."""
    best, start = (0, 0), None
    for i, f in enumerate(np.append(flags, False)):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def _evidence_at(spectrum: Spectrum, theta: float, radii: np.ndarray) -> LineEvidence:
    centre = _sample(spectrum, radii, np.full(radii.size, theta))
    sides = []
    for d in SIDE_OFFSETS_BINS:
        delta = np.minimum(d * spectrum.bin_width / radii, math.pi / 4)
        sides.append(_sample(spectrum, radii, theta + delta))
        sides.append(_sample(spectrum, radii, theta - delta))
    contrast = (centre - np.median(np.stack(sides), axis=0)) * 10.0 / math.log(10.0)
    # A 3-sample running median: one low bin (a node of a sinc², rounding of an oblique ray)
    # does not break a run.
    padded = np.concatenate([contrast[:1], contrast, contrast[-1:]])
    smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    a, b = _longest_run(smooth >= CONTRAST_DB)
    if b - a < 2:
        return LineEvidence(float(radii[0]), float(radii[0]), 0, 0.0, 0.0)
    # The slope inside the inscribed circle: beyond it, interpolated oblique stripes roll off
    # steeply (a sinc⁴ of the interpolation kernel).
    inner = radii[a:b] <= 0.5
    u = np.log(radii[a:b][inner])
    slope = float(np.polyfit(u, centre[a:b][inner], 1)[0]) if u.size > 2 and np.ptp(u) > 0 else 0.0
    return LineEvidence(
        run_low=float(radii[a]),
        run_high=float(radii[b - 1]),
        run_samples=b - a,
        median_contrast_db=float(np.median(contrast[a:b])),
        slope=slope,
    )


def line_evidence(spectrum: Spectrum, region: dict[str, Any]) -> LineEvidence | None:
    """The contrast of a wedge's line against the same rings beside it, over the region's
    radial range inside the grid, at the direction within the wedge's tolerance where the
    line runs longest (a wedge merged from adjacent rays may centre between two lines).
    None when fewer than four radii are inside the grid: a fragment in a corner of it."""
    bw = spectrum.bin_width
    theta = math.radians(region["angle_deg"])
    # The ray leaves the square grid at 0.5 / max(|cos|, |sin|).
    edge = 0.5 / max(abs(math.cos(theta)), abs(math.sin(theta)))
    radii = np.arange(max(region["low"], 3.0 * bw), min(region["high"], edge) + bw / 2, bw)
    if radii.size < 4:
        return None
    # Directions one bin apart at the radius 0.5, across the tolerance.
    tol = math.radians(region.get("tolerance_deg", 0.0))
    steps = np.arange(-tol, tol + 1e-9, 2.0 * bw) if tol > 0 else np.zeros(1)
    candidates = [_evidence_at(spectrum, theta + float(d), radii) for d in steps]
    return max(candidates, key=lambda ev: (ev.run_samples, ev.median_contrast_db))


def is_stripe_line(spectrum: Spectrum, region: dict[str, Any], min_samples: int) -> bool:
    """Whether a candidate wedge is stripe noise by the module's two tests; ``min_samples``:
    the shortest run of radii (one bin apart) that counts as a line."""
    ev = line_evidence(spectrum, region)
    if ev is None:
        return False  # a few bins in a corner of the grid: not a line through it
    return (
        ev.run_samples >= min_samples
        and ev.run_high >= MIN_RUN_HIGH
        and ev.median_contrast_db >= RUN_MEDIAN_DB
        and ev.slope >= MIN_LINE_SLOPE
    )


def _run_ends(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``flags`` (angles × radii): the length of its longest run of True values
    and the index where that run ends (inclusive)."""
    counts = np.cumsum(flags, axis=1)
    last_reset = np.maximum.accumulate(np.where(flags, 0, counts), axis=1)
    lengths = counts - last_reset
    ends = np.argmax(lengths, axis=1)
    return lengths[np.arange(flags.shape[0]), ends], ends


def scan_lines(spectrum: Spectrum, min_samples: int) -> list[tuple[float, float, LineEvidence]]:
    """Stripe lines found by their contrast against the same rings beside them, in every
    direction (one bin apart at the radius 0.5): ``(angle_deg, tolerance_deg, evidence)`` per
    group of adjacent directions that pass :func:`is_stripe_line`'s tests. Finds lines too weak
    to stand above the radial trend where the image's own power is high."""
    bw = spectrum.bin_width
    step = min(0.5, math.degrees(2.0 * bw))  # one bin apart at the radius 0.5
    thetas = np.radians(np.arange(0.0, 180.0, step))[:, None]
    radii = np.arange(3, int(math.sqrt(0.5) / bw) + 1) * bw
    edge = 0.5 / np.maximum(np.abs(np.cos(thetas)), np.abs(np.sin(thetas)))
    inside = radii[None, :] <= edge
    r = np.broadcast_to(radii, (thetas.size, radii.size))
    centre = _sample(spectrum, r, np.broadcast_to(thetas, r.shape))
    sides = []
    for d in SIDE_OFFSETS_BINS:
        delta = np.minimum(d * bw / r, math.pi / 4)
        sides.append(_sample(spectrum, r, thetas + delta))
        sides.append(_sample(spectrum, r, thetas - delta))
    ordered = np.sort(np.stack(sides), axis=0)
    k = len(sides) // 2
    background = 0.5 * (ordered[k - 1] + ordered[k])  # the median of an even count
    contrast = np.where(inside, (centre - background) * 10.0 / math.log(10.0), -np.inf)
    left, mid, right = contrast[:, :-2], contrast[:, 1:-1], contrast[:, 2:]
    # a 3-sample running median: max(min(l, m), min(max(l, m), r))
    smooth = np.maximum(np.minimum(left, mid), np.minimum(np.maximum(left, mid), right))
    smooth = np.concatenate([contrast[:, :1], smooth, contrast[:, -1:]], axis=1)
    lengths, ends = _run_ends(smooth >= CONTRAST_DB)
    # White stripes stand out most near the edge of the grid: the run must reach near it.
    reach = radii[ends] >= SCAN_REACH * edge[:, 0]
    hits: dict[int, LineEvidence] = {}
    for j in np.flatnonzero((lengths >= min_samples) & reach).tolist():
        a, b = int(ends[j] - lengths[j] + 1), int(ends[j] + 1)
        inner = radii[a:b] <= 0.5
        u = np.log(radii[a:b][inner])
        slope = float(np.polyfit(u, centre[j, a:b][inner], 1)[0]) if u.size > 2 else 0.0
        ev = LineEvidence(
            float(radii[a]), float(radii[b - 1]), b - a, float(np.median(contrast[j, a:b])), slope
        )
        if ev.median_contrast_db >= RUN_MEDIAN_DB and ev.slope >= MIN_LINE_SLOPE:
            hits[j] = ev
    # Group adjacent directions (cyclic over 180°); each group is one line at its best one.
    out = []
    for g in cyclic_groups(hits, thetas.size):
        best = max(g, key=lambda j: (hits[j].run_samples, hits[j].median_contrast_db))
        span = (len(g) - 1) * step / 2
        out.append((float(best * step), min(max(span + 1.5, 2.0), 45.0), hits[best]))
    return out


__all__ = ["LineEvidence", "is_stripe_line", "line_evidence", "scan_lines"]
