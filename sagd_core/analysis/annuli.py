"""Annuli in a radial profile (``sagd analyze``, DESIGN.md §2): bands of rings raised above a
local baseline, with a step at both edges and raised all around (angular sectors) — the
signature of band-limited noise. Run on the whole image's spectrum (without its peaks) and on
its floor spectrum (:func:`sagd_core.analysis.spectrum_stats.floor_spectrum`)."""

from __future__ import annotations

import numpy as np

from sagd_core.analysis.config import AnalyzeConfig
from sagd_core.analysis.regions import DetectedRegion
from sagd_core.analysis.regions import db_to_log as _db_to_log
from sagd_core.analysis.regions import log_to_db as _log_to_db
from sagd_core.analysis.spectrum_stats import Spectrum, masked_group_medians

#: Rings beyond this radius (cycles/pixel) hold few bins (the corners of the grid).
R_MAX_RING = 0.6


def find_annuli(
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
        # A flank cut short by the end of the search range (the rings next to DC) leaves the
        # baseline to a few rings of the image's steep low-frequency power: at least half of
        # each flank must remain.
        ok = (
            (a - la >= np.maximum(2, (flank + 1) // 2))
            & (rb - bs >= np.maximum(2, (flank + 1) // 2))
            & (before2[bs] - after2[bs] >= edge_thr)
        )
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


def sector_profiles(
    spectrum: Spectrum, radii: np.ndarray, exclude: np.ndarray | None = None
) -> np.ndarray:
    """``(SECTORS, rings)``: the median log power per one-bin ring within each angular sector
    (NaN where a sector holds no bin of a ring); ``exclude`` leaves bins out, except where it
    would leave too few of a sector's ring (:func:`kept_enough`)."""
    bw = spectrum.bin_width
    ring = np.rint(spectrum.radius / bw - 0.5).astype(int).ravel()
    angle = np.degrees(np.arctan2(spectrum.fy, spectrum.fx)) % 180.0
    sector = np.broadcast_to(
        np.minimum((angle / (180.0 / SECTORS)).astype(int), SECTORS - 1), spectrum.shape
    ).ravel()
    n = radii.size + 1  # keys per sector: one per ring, the last for rings beyond
    keys = sector * n + np.minimum(ring, radii.size)
    left_out = exclude.ravel() if exclude is not None else None
    medians, _ = masked_group_medians(keys, spectrum.log_power.ravel(), SECTORS * n, left_out)
    return medians.reshape(SECTORS, n)[:, : radii.size]


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


__all__ = ["R_MAX_RING", "SECTORS", "SECTORS_NEEDED", "find_annuli", "sector_profiles"]
