"""Bands of noise that the tiles show (``sagd analyze``, DESIGN.md §2): a search for annuli
in the per-tile radial profiles.

Band-limited noise is stationary: every tile holds it at the same level. The image's own power
in that band is not: edges and textures hold it, flat areas do not. A band several dB below
the image's power in the whole spectrum therefore still stands above the rings beside it in
most tiles. Per tile, the excess of the band's rings over the straight line (log power against
log radius) through the rings beside it on both sides; a band is found when the *median* tile
shows an excess of ``AnalyzeConfig.tile_band_db`` or more (a photo's ring-shaped content is
in a few tiles, not in the median one). Both edges of the band must step (:data:`EDGE_DB`).
"""

from __future__ import annotations

import numpy as np

from sagd_core.analysis.regions import DetectedRegion, log_to_db
from sagd_core.analysis.stationarity import TileSpectra

#: Both edges of a band must step by this much (dB, median tile, against the flanks' slope):
#: noise confined to a band has sharp edges; a camera's own smooth bump of processing noise
#: (demosaicing, sharpening) rises and falls over many rings.
EDGE_DB = 2.5
#: Band widths searched, in tile rings (one ring: ``1 / FLOOR_TILE`` cycles/pixel).
MIN_RINGS, MAX_RINGS = 2, 10
#: Bands start at or beyond this radius and their outer flank ends before this one.
R_START, R_STOP = 0.05, 0.5


def _candidates(rings: int, t: int) -> np.ndarray:
    """``(k, 4)`` rows ``(la, a, b, rb)``: band ``[a, b)`` with flanks ``[la, a)``, ``[b, rb)``."""
    out = []
    a_min = max(2, round(R_START * t))
    stop = min(rings, int(R_STOP * t) + 1)
    for a in range(a_min, stop):
        for b in range(a + MIN_RINGS, a + MAX_RINGS + 1):
            flank = max(2, (b - a) // 2)
            la, rb = a - flank, b + flank
            if la >= 1 and rb <= stop:
                out.append((la, a, b, rb))
    return np.asarray(out, dtype=int).reshape(-1, 4)


def median_tile_excess(tiles: TileSpectra) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(candidates (k, 4), excess (k,), edge step (k,))`` of the tile periodograms: the
    median over tiles of each band's log excess over the line through its flanks, and the
    median over tiles of the smaller of its two edge steps (the steepest two-ring rise within
    a ring of the lower edge and the steepest fall near the upper one, both against the
    flanks' slope)."""
    t = tiles.size
    logp = np.log(tiles.rings + 1e-300)
    n, rings = logp.shape
    cand = _candidates(rings, t)
    if cand.size == 0:
        return cand, np.zeros(0), np.zeros(0)
    logr = np.log(np.maximum(np.arange(rings, dtype=np.float64), 0.5))
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(logp, axis=1)], axis=1)
    lsum = np.concatenate([[0.0], np.cumsum(logr)])
    la, a, b, rb = cand.T

    def mean(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (csum[:, hi] - csum[:, lo]) / (hi - lo), (lsum[hi] - lsum[lo]) / (hi - lo)

    yl, xl = mean(la, a)
    yr, xr = mean(b, rb)
    yi, xi = mean(a, b)
    slope = (yr - yl) / (xr - xl)  # (n, k)
    excess = yi - (yl + slope * (xi - xl))

    def step(centre: np.ndarray, sign: float) -> np.ndarray:
        """The steepest detrended two-ring change (``sign`` +1: rise, −1: fall) centred
        within a ring of ``centre``."""
        best = np.full(excess.shape, -np.inf)
        for shift in (-1, 0, 1):
            lo = np.clip(centre + shift - 1, 0, rings - 1)
            hi = np.clip(centre + shift + 1, 0, rings - 1)
            change = logp[:, hi] - logp[:, lo] - slope * (logr[hi] - logr[lo])
            best = np.maximum(best, sign * change)
        return best

    edge = np.minimum(step(a, 1.0), step(b - 1, -1.0))
    return cand, np.median(excess, axis=0), np.median(edge, axis=0)


def tile_annuli(
    tiles: TileSpectra, min_db: float = 3.0, max_bands: int = 2
) -> list[DetectedRegion]:
    """Annuli whose median tile stands ``min_db`` above the rings beside them, with steps at
    both edges, the best-scoring disjoint ones first."""
    t = tiles.size
    cand, score, edge = median_tile_excess(tiles)
    out: list[DetectedRegion] = []
    taken: list[tuple[int, int]] = []
    for k in np.argsort(-score):
        db = log_to_db(float(score[k]))
        if db < min_db:
            break
        a, b = int(cand[k, 1]), int(cand[k, 2])
        if log_to_db(float(edge[k])) < EDGE_DB:
            continue
        if any(a < tb and ta < b for ta, tb in taken):
            continue
        taken.append((a, b))
        region = {
            "kind": "annulus",
            "low": round((a - 0.5) / t, 6),
            "high": round((b - 0.5) / t, 6),
        }
        out.append(DetectedRegion(region, db, "annulus"))
        if len(out) >= max_bands:
            break
    return out


__all__ = ["EDGE_DB", "MAX_RINGS", "MIN_RINGS", "median_tile_excess", "tile_annuli"]
