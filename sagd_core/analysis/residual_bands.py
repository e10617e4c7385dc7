"""Bands of noise under an image's edges (``sagd analyze``, DESIGN.md §2): a search for annuli
in the tiles of the image's *Laplacian with its edges left out*.

A band of noise a few dB under a scene's own power stays hidden in every view of the image's
spectrum when the scene is full of sharp edges (dead leaves, gravel, foliage): the edges put
power into every ring of every tile, so even the median tile (:mod:`tile_bands`) shows the
band only 1–2 dB above the rings beside it. Between its edges such a scene is smooth: flat or
gently shaded areas, which the 4-neighbour Laplacian removes exactly (it is zero on any
plane), while it keeps band-limited noise (weighted by ``|2πf|²``, a power law that the
straight line through a band's flanks follows). The edges are where the Laplacian is large:
pixels more than :data:`EDGE_SIGMAS` robust standard deviations out in any channel are left
out (set to zero). What remains holds the noise and almost nothing of the scene, so the band
stands several dB above its flanks in the median tile, with sharp edges; a clean scene's
residual is the camera's own broadband noise and fine texture, without a band.

The earlier residual, the image minus its 3×3 median, keeps the corners of edges and every
structure thinner than 3 px; at 256² a dead-leaves scene is dense with both, and weak low
bands (0.06–0.2 cycles/pixel) stayed hidden. Leaving pixels out multiplies the noise by the
kept mask, which spreads part of its power over other frequencies, and tiles that keep fewer
pixels hold less of it: each tile's periodogram is divided by its kept share (under the
tile's squared window) so that the band's excess spreads evenly over the tiles again.

The residual's tiles are searched like the image's (:func:`tile_annuli`), at a threshold of
their own, and a band must spread evenly over them (participation ratio,
:mod:`stationarity`): the noise is everywhere, a patch of fine texture is not.
"""

from __future__ import annotations

import cv2
import numpy as np

from sagd_core.analysis.regions import DetectedRegion
from sagd_core.analysis.spectrum_stats import FLOOR_STRIDE, FLOOR_TILE, tile_powers
from sagd_core.analysis.stationarity import TileSpectra, band_excess, participation
from sagd_core.analysis.tile_bands import tile_annuli

#: The 4-neighbour Laplacian: zero on planes (flat and linearly shaded areas).
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)
#: Pixels whose Laplacian lies this many robust standard deviations out (median absolute
#: value / 0.6745) in any channel are edges and are left out.
EDGE_SIGMAS = 3.0
#: A tile's periodogram is divided by at least this kept share (tiles almost all edge).
MIN_KEPT_SHARE = 0.05


def edge_free_laplacian(chw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(residual (C, H, W) float32, kept (H, W) bool)``: the Laplacian of each channel of a
    ``(C, H, W)`` image, zero at the edges (module docstring), and the pixels kept."""
    lap = np.empty(chw.shape, dtype=np.float32)
    for c in range(chw.shape[0]):
        x = np.ascontiguousarray(chw[c], dtype=np.float32)
        lap[c] = cv2.filter2D(x, -1, LAPLACIAN, borderType=cv2.BORDER_REFLECT)
    size = np.abs(lap)
    sigma = float(np.median(size)) / 0.6745
    kept = np.asarray(~(size > EDGE_SIGMAS * sigma).any(axis=0))
    return np.where(kept[None], lap, np.float32(0.0)), kept


def kept_shares(kept: np.ndarray) -> np.ndarray:
    """Per tile of :func:`tile_powers` (same order), the share of kept pixels under the tile's
    squared Hann window."""
    t, step = FLOOR_TILE, FLOOR_STRIDE
    weight = np.outer(np.hanning(t), np.hanning(t)) ** 2
    weight /= weight.sum()
    views = np.lib.stride_tricks.sliding_window_view(kept.astype(np.float64), (t, t))
    tiles = views[::step, ::step]  # (rows, cols, t, t), row-major like tile_powers
    return np.asarray(np.einsum("ijkl,kl->ij", tiles, weight).ravel())


def residual_tiles(chw: np.ndarray, exclude: np.ndarray | None = None) -> TileSpectra | None:
    """The tile periodograms of the edge-free Laplacian, each divided by its kept share
    (``exclude``: tile bins the ring medians leave out); None when the image holds fewer than
    four tiles."""
    residual, kept = edge_free_laplacian(chw)
    half = tile_powers(residual)
    if half is None:
        return None
    share = np.maximum(kept_shares(kept), MIN_KEPT_SHARE).astype(half.dtype)
    return TileSpectra.from_half(half / share[:, None, None], exclude)


def residual_annuli(
    chw: np.ndarray, min_db: float, min_spread: float, exclude: np.ndarray | None = None
) -> list[DetectedRegion]:
    """Annuli whose median tile of the edge-free Laplacian stands ``min_db`` above the rings
    beside it (with steps at both edges) and whose excess spreads over the residual's tiles
    with a participation ratio of ``min_spread`` or more (``exclude``: tile bins the ring
    medians leave out, :class:`TileSpectra`). Empty when the image holds fewer than four
    tiles."""
    tiles = residual_tiles(chw, exclude)
    if tiles is None:
        return []
    return [
        band
        for band in tile_annuli(tiles, min_db)
        if participation(band_excess(tiles, band.region["low"], band.region["high"])) >= min_spread
    ]


__all__ = [
    "EDGE_SIGMAS",
    "LAPLACIAN",
    "edge_free_laplacian",
    "kept_shares",
    "residual_annuli",
    "residual_tiles",
]
