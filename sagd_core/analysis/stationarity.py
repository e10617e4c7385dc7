"""How evenly a detected spectral component spreads over an image (``sagd analyze``,
DESIGN.md §2).

Interference and noise are in the whole image: a periodic pattern from a screen or a scanner,
stripes, a band of noise. A photo's own texture at the same frequency is local: the reeding of
a coin's rim, a clock's tick marks, a patch of fabric. So a detection is checked in the tile
periodograms (:func:`sagd_core.analysis.spectrum_stats.tile_powers`): per tile, the power the
component adds over its surroundings (a peak over the ring of bins around it, a band over the
rings beside it), and then how evenly that excess spreads over the tiles, as a *participation
ratio* ``(Σ e)² / (n Σ e²)``: 1 when every tile holds the same excess, ``k / n`` when ``k`` of
``n`` tiles hold it all.

A halftone screen multiplies the image: its peaks are weak in the dark parts of a photo and
strong in the bright ones, so their excess follows the tiles' brightness rather than spreading
evenly. A peak's spread is therefore also judged on its excess divided by each tile's
brightness power (:func:`peak_spread`); a photo's local texture stays local either way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from sagd_core.analysis.spectrum_stats import kept_enough


def full_grid(half: np.ndarray) -> np.ndarray:
    """``(..., t, t)`` from the ``rfft2`` half ``(..., t, t // 2 + 1)`` of real images' power
    (symmetric through DC)."""
    t = half.shape[-2]
    out = np.empty((*half.shape[:-1], t), dtype=half.dtype)
    out[..., : half.shape[-1]] = half
    cols = np.arange(half.shape[-1], t)
    out[..., cols] = half[..., (-np.arange(t)) % t, :][..., t - cols]
    return out


@dataclass
class TileSpectra:
    """Full-grid tile periodograms ``(n, t, t)`` and, computed once when first asked for,
    their ring medians (:func:`ring_medians`, without the bins of ``exclude``)."""

    grid: np.ndarray
    exclude: np.ndarray | None = None  # (t, t) bins the ring medians leave out
    brightness: np.ndarray | None = None  # (n,) per tile, spectrum_stats.tile_brightness
    _rings: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_half(
        cls,
        half: np.ndarray,
        exclude: np.ndarray | None = None,
        brightness: np.ndarray | None = None,
    ) -> TileSpectra:
        """From :func:`sagd_core.analysis.spectrum_stats.tile_powers` (half the grid)."""
        return cls(full_grid(half), exclude, brightness)

    @property
    def size(self) -> int:
        return int(self.grid.shape[-1])

    @property
    def rings(self) -> np.ndarray:
        if self._rings is None:
            self._rings = ring_medians(self.grid, self.exclude)
        return self._rings


def participation(excess: np.ndarray) -> float:
    """``(Σ e)² / (n Σ e²)`` of the non-negative parts of ``excess`` (0 when none)."""
    e = np.clip(excess, 0.0, None)
    total = float((e**2).sum())
    if total <= 0.0:
        return 0.0
    return float(e.sum() ** 2 / (e.size * total))


def peak_excess(tiles: TileSpectra, fy: float, fx: float) -> np.ndarray:
    """Per tile, the power of the 3×3 bins around ``(fy, fx)`` over 9 times the median of the
    bins around them (a 9×9 window without its central 5×5)."""
    t = tiles.size
    iy, ix = round(fy * t), round(fx * t)
    rows, cols = np.arange(iy - 4, iy + 5) % t, np.arange(ix - 4, ix + 5) % t
    window = tiles.grid[:, rows][:, :, cols]  # (n, 9, 9)
    ring = np.ones((9, 9), dtype=bool)
    ring[2:7, 2:7] = False
    background = np.median(window[:, ring], axis=1)
    return np.asarray(window[:, 3:6, 3:6].sum(axis=(1, 2)) - 9.0 * background)


def peak_spread(tiles: TileSpectra, fy: float, fx: float) -> float:
    """How evenly a peak's excess (:func:`peak_excess`) spreads over the tiles: the larger of
    its participation ratio and that of the excess divided by each tile's brightness power
    (when ``tiles.brightness`` is known; module docstring)."""
    excess = peak_excess(tiles, fy, fx)
    spread = participation(excess)
    if tiles.brightness is not None:
        spread = max(spread, participation(excess / np.maximum(tiles.brightness, 1e-12)))
    return spread


def ring_medians(tiles: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """``(n, rings)``: per tile, the median power of each one-bin ring of full-grid tiles
    ``(n, t, t)`` (ring ``k``: radii within half a bin of ``k / t``). A median ignores the few
    bins a periodic peak or a stripe line holds on a ring; ``exclude`` (``(t, t)``) leaves out
    bins that strong peaks hold (at a tile's resolution a peak and its copies fill much of a
    ring), except in rings it would leave too few of (:func:`kept_enough`)."""
    t = tiles.shape[-1]
    f = np.fft.fftfreq(t)
    ring = np.rint(np.hypot(f[:, None], f[None, :]) * t).astype(int).ravel()
    order = np.argsort(ring, kind="stable")
    bounds = np.searchsorted(ring[order], np.arange(int(ring.max()) + 2))
    flat = tiles.reshape(tiles.shape[0], -1)[:, order]
    left_out = exclude.ravel()[order] if exclude is not None else None
    out = []
    for lo, hi in itertools.pairwise(bounds):
        chunk = flat[:, lo:hi]
        if left_out is not None:
            keep = ~left_out[lo:hi]
            if kept_enough(int(keep.sum()), hi - lo):
                chunk = chunk[:, keep]
        out.append(np.median(chunk, axis=1))
    return np.stack(out, axis=1).astype(np.float64)


def tile_bins(h: int, w: int, bins: np.ndarray, t: int, grow: int = 2) -> np.ndarray:
    """``(t, t)``: the bins of a tile grid (side ``t``) within ``grow`` bins of the full-grid
    bins ``bins`` (``(h, w)`` boolean) of an ``h × w`` image, conjugates included."""
    iy, ix = np.nonzero(bins)
    out = np.zeros((t, t), dtype=bool)
    if iy.size == 0:
        return out
    fy = np.fft.fftfreq(h)[iy]
    fx = np.fft.fftfreq(w)[ix]
    ty = np.rint(fy * t).astype(int) % t
    tx = np.rint(fx * t).astype(int) % t
    out[ty, tx] = True
    out[(-ty) % t, (-tx) % t] = True
    if grow > 0:
        # dilate on the periodic grid
        padded = np.pad(out, grow, mode="wrap")
        grown = ndimage.binary_dilation(padded, iterations=grow)
        out = grown[grow:-grow, grow:-grow]
    out[0, 0] = False
    return out


def band_excess(tiles: TileSpectra, low: float, high: float) -> np.ndarray:
    """Per tile, the mean of the ring medians (:func:`ring_medians`) in ``[low, high)`` over
    the straight line (log power against log radius) through the rings beside the band on both
    sides (as wide as half the band, at least two rings each)."""
    t = tiles.size
    means = tiles.rings
    a = max(1, round(low * t))
    b = max(a + 1, round(high * t))
    flank = max(2, (b - a) // 2)
    la, rb = max(1, a - flank), min(means.shape[1], b + flank)
    inside = means[:, a:b].mean(axis=1)
    if a - la < 1 or rb - b < 1:
        return inside * 0.0
    left, right = means[:, la:a].mean(axis=1), means[:, b:rb].mean(axis=1)
    r = np.maximum(np.arange(means.shape[1], dtype=np.float64), 0.5)  # ring k: radius k / t
    xl, xr, xi = np.log(r[la:a]).mean(), np.log(r[b:rb]).mean(), np.log(r[a:b]).mean()
    tiny = 1e-300
    ll, lr = np.log(left + tiny), np.log(right + tiny)
    base = np.exp(ll + (lr - ll) * (xi - xl) / (xr - xl))
    return np.asarray(inside - base)


__all__ = [
    "TileSpectra",
    "band_excess",
    "full_grid",
    "participation",
    "peak_excess",
    "peak_spread",
    "ring_medians",
    "tile_bins",
]
