"""Bands of noise under an image's edges (``sagd analyze``, DESIGN.md §2): a search for annuli
in the tiles of the image *minus its 3×3 median*.

A band of noise a few dB under a scene's own power stays hidden in every view of the image's
spectrum when the scene is full of sharp edges (dead leaves, gravel, foliage): the edges put
power into every ring of every tile, so even the median tile (:mod:`tile_bands`) shows the
band only 1–2 dB above the rings beside it. A small median filter keeps edges and flat areas
and removes fine Gaussian texture: what it leaves, ``x − median₃(x)``, holds the noise and
little of the edges (their corners and the thinnest structures only). There the same band
stands several dB above its flanks in the median tile, with sharp edges, and the median tile
of a clean photo's residual shows no band (its residual is the camera's own broadband noise
and fine texture). The residual's tiles are searched like the image's (:func:`tile_annuli`),
at a threshold of their own, and a band must spread evenly over the residual's tiles
(participation ratio, :mod:`stationarity`): the noise is everywhere, a patch of fine texture
is not.
"""

from __future__ import annotations

import cv2
import numpy as np

from sagd_core.analysis.regions import DetectedRegion
from sagd_core.analysis.spectrum_stats import tile_powers
from sagd_core.analysis.stationarity import TileSpectra, band_excess, participation
from sagd_core.analysis.tile_bands import tile_annuli

#: Side of the median filter (pixels): the smallest that keeps a step edge.
MEDIAN_SIDE = 3


def median_residual(chw: np.ndarray) -> np.ndarray:
    """``x − median₃(x)`` per channel of a ``(C, H, W)`` image (float32)."""
    out = np.empty(chw.shape, dtype=np.float32)
    for c in range(chw.shape[0]):
        x = np.ascontiguousarray(chw[c], dtype=np.float32)
        out[c] = x - cv2.medianBlur(x, MEDIAN_SIDE)
    return out


def residual_annuli(
    chw: np.ndarray, min_db: float, min_spread: float, exclude: np.ndarray | None = None
) -> list[DetectedRegion]:
    """Annuli whose median tile of the median residual stands ``min_db`` above the rings
    beside it (with steps at both edges) and whose excess spreads over the residual's tiles
    with a participation ratio of ``min_spread`` or more (``exclude``: tile bins the ring
    medians leave out, :class:`TileSpectra`). Empty when the image holds fewer than four
    tiles."""
    half = tile_powers(median_residual(chw))
    if half is None:
        return []
    tiles = TileSpectra.from_half(half, exclude)
    return [
        band
        for band in tile_annuli(tiles, min_db)
        if participation(band_excess(tiles, band.region["low"], band.region["high"])) >= min_spread
    ]


__all__ = ["MEDIAN_SIDE", "median_residual", "residual_annuli"]
