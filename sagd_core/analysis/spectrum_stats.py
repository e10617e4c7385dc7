"""Power spectrum statistics for band detection: windowed periodogram, radial profile and a
robust power-law trend fit ``log P ≈ a + b log r`` (natural images: ``b ≈ −2``).

Images are windowed (Hann) before the DFT so the border discontinuity of a non-periodic image
does not put a false cross of energy on the axes, and leakage from off-grid periodic
interference stays within a few bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sagd_core.spectral.grid import R_MAX


@dataclass(frozen=True)
class PowerLawFit:
    """``log P(r) ≈ intercept + slope · u + curvature · u²``, ``u = log r``, over
    ``[r_low, r_high]`` (natural logs). ``curvature`` is 0 for a pure power law; upsampled or
    blurred images bend down at high frequencies and need it."""

    intercept: float
    slope: float
    r_low: float
    r_high: float
    scatter: float  # robust std of the profile residual over the bins kept
    curvature: float = 0.0

    def log_trend(self, r: np.ndarray) -> np.ndarray:
        u = np.log(np.clip(r, self.r_low, self.r_high))
        return self.intercept + self.slope * u + self.curvature * u**2


@dataclass(frozen=True)
class Spectrum:
    """Full-grid (unshifted) log power of the windowed image, averaged over channels."""

    log_power: np.ndarray  # (H, W)
    fy: np.ndarray  # (H, 1) cycles/pixel
    fx: np.ndarray  # (1, W)

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.log_power.shape
        return int(h), int(w)

    @property
    def radius(self) -> np.ndarray:
        return np.sqrt(self.fy**2 + self.fx**2)

    @property
    def angle_deg(self) -> np.ndarray:
        """Direction of each bin, ``atan2(fy, fx)`` modulo 180° (a line through DC)."""
        return np.degrees(np.arctan2(self.fy, self.fx)) % 180.0

    @property
    def bin_width(self) -> float:
        return 1.0 / min(self.shape)


#: Power floor relative to the mean power: spectra of upsampled or synthetic images fall to
#: rounding noise at high frequencies, whose log would fluctuate wildly around any trend.
FLOOR_DB = -40.0


def power_spectrum(chw: np.ndarray) -> Spectrum:
    """Log periodogram of a ``(C, H, W)`` image (any real scale), channels averaged, plus a floor
    :data:`FLOOR_DB` below the mean power."""
    _c, h, w = chw.shape
    x = chw.astype(np.float64) - chw.mean(axis=(1, 2), keepdims=True)
    window = np.hanning(h + 2)[1:-1, None] * np.hanning(w + 2)[None, 1:-1]
    window /= np.sqrt(np.mean(window**2))
    power = np.abs(np.fft.fft2(x * window, norm="ortho")) ** 2
    mean_power = power.mean(axis=0)
    floor = max(float(mean_power.mean()) * 10 ** (FLOOR_DB / 10), 1e-300)
    return Spectrum(
        log_power=np.log(mean_power + floor),
        fy=np.fft.fftfreq(h)[:, None],
        fx=np.fft.fftfreq(w)[None, :],
    )


#: Tiles of the floor spectrum: side and stride (pixels), and the percentile across tiles.
FLOOR_TILE = 64
FLOOR_STRIDE = 32
FLOOR_PERCENTILE = 25.0


def tile_powers(chw: np.ndarray) -> np.ndarray | None:
    """Periodograms of overlapping Hann-windowed ``FLOOR_TILE``² tiles (stride
    ``FLOOR_STRIDE``), channels averaged, on half the grid: ``(tiles, t, t // 2 + 1)`` (the
    ``rfft2`` layout). None when the image holds fewer than four tiles."""
    _c, h, w = chw.shape
    t, step = FLOOR_TILE, FLOOR_STRIDE
    if h < 2 * t or w < 2 * t:
        return None
    # float32 input (the edge-free Laplacian residual) stays float32: half the cost, ample
    # for powers
    x = chw if chw.dtype == np.float32 else chw.astype(np.float64)
    window = np.outer(np.hanning(t), np.hanning(t))
    window = (window / np.sqrt(np.mean(window**2))).astype(x.dtype)
    tiles = [
        x[:, i : i + t, j : j + t]
        for i in range(0, h - t + 1, step)
        for j in range(0, w - t + 1, step)
    ]
    stack = np.stack(tiles)  # (n, C, t, t)
    stack = stack - stack.mean(axis=(2, 3), keepdims=True)
    return (np.abs(np.fft.rfft2(stack * window, norm="ortho")) ** 2).mean(axis=1)


def tile_brightness(chw: np.ndarray) -> np.ndarray | None:
    """Per tile of :func:`tile_powers` (same order), the mean square of the unit-range image
    (``chw`` in the model range ``[-1, 1]``) under the tile's squared window, channels
    averaged: the power a multiplicative screen of unit depth would put into that tile's
    periodogram. None when the image holds fewer than four tiles."""
    _c, h, w = chw.shape
    t, step = FLOOR_TILE, FLOOR_STRIDE
    if h < 2 * t or w < 2 * t:
        return None
    weight = np.outer(np.hanning(t), np.hanning(t)) ** 2
    weight /= weight.sum()
    square = (((chw.astype(np.float64) + 1.0) / 2.0) ** 2).mean(axis=0)
    return np.array(
        [
            float((square[i : i + t, j : j + t] * weight).sum())
            for i in range(0, h - t + 1, step)
            for j in range(0, w - t + 1, step)
        ]
    )


def floor_spectrum(chw: np.ndarray, tiles: np.ndarray | None = None) -> Spectrum | None:
    """The log power that *every* part of the image holds: per frequency, a low percentile
    over overlapping Hann-windowed ``FLOOR_TILE``² tiles (channels averaged). Stationary noise
    is in every tile; edges and objects are only in some, so a band of noise stands out here
    when the whole image's spectrum hides it under its content. None when the image holds
    fewer than four tiles. ``tiles``: :func:`tile_powers` of ``chw`` when already computed."""
    power = tile_powers(chw) if tiles is None else tiles
    if power is None:
        return None
    t = FLOOR_TILE
    # Half the grid (a real image's power is symmetric through DC), then the other half.
    half = np.percentile(power, FLOOR_PERCENTILE, axis=0)  # (t, t // 2 + 1)
    low = np.empty((t, t))
    low[:, : half.shape[1]] = half
    cols = np.arange(half.shape[1], t)
    low[:, cols] = half[(-np.arange(t)) % t][:, t - cols]
    floor = max(float(low.mean()) * 10 ** (FLOOR_DB / 10), 1e-300)
    return Spectrum(
        log_power=np.log(low + floor),
        fy=np.fft.fftfreq(t)[:, None],
        fx=np.fft.fftfreq(t)[None, :],
    )


#: A ring (or a sector of one) keeps its medians without the bins of strong peaks when at
#: least this many bins and this share of it remain (:func:`kept_enough`).
MIN_KEPT, MIN_KEPT_SHARE = 4, 1 / 8


def kept_enough(kept: int, total: int) -> bool:
    """Whether a ring (or a sector of one) keeps enough bins for a median once the bins of
    strong peaks are left out (:data:`MIN_KEPT`, :data:`MIN_KEPT_SHARE`). A halftone screen's
    four peaks, their conjugates and the image copies beside them can hold most of a tile's
    ring; the rest of the ring still tells its level."""
    return kept >= MIN_KEPT and kept >= MIN_KEPT_SHARE * total


def group_medians(keys: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(medians, counts)`` of ``values`` per integer key in ``[0, n)`` (NaN where a key has
    none), with one sort: keys plus each value scaled into ``[0, 0.5]`` order the values by
    key and, within a key, by size; a median is then the middle of its key's run."""
    lo, hi = float(values.min()), float(values.max())
    order = np.argsort(keys + (values - lo) * (0.5 / max(hi - lo, 1e-300)))
    counts = np.bincount(keys, minlength=n)[:n]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ordered = values[order]
    has = counts > 0
    medians = np.full(n, np.nan)
    below = (starts + (counts - 1) // 2)[has]
    above = (starts + counts // 2)[has]
    medians[has] = 0.5 * (ordered[below] + ordered[above])
    return medians, counts


def masked_group_medians(
    keys: np.ndarray, values: np.ndarray, n: int, exclude: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`group_medians` without the ``exclude`` entries, except for keys it would leave
    too few of (:func:`kept_enough`); counts of all entries."""
    medians, counts = group_medians(keys, values, n)
    if exclude is not None and exclude.any():
        keep = ~exclude
        kept, kept_counts = group_medians(keys[keep], values[keep], n)
        use = (kept_counts >= MIN_KEPT) & (kept_counts >= MIN_KEPT_SHARE * counts)
        medians = np.where(use, kept, medians)
    return medians, counts


def radial_profile(
    spectrum: Spectrum, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(radii, median log power, bin count)`` in rings one bin wide, up to ``R_MAX``;
    ``exclude`` (a boolean grid) leaves bins out of the medians, except in rings it would
    leave too few of (:func:`kept_enough`)."""
    r = spectrum.radius.ravel()
    bw = spectrum.bin_width
    edges = np.arange(0.0, R_MAX + bw, bw)
    rings = edges.size - 1
    idx = np.clip(np.digitize(r, edges) - 1, 0, rings - 1)
    left_out = exclude.ravel() if exclude is not None else None
    medians, counts = masked_group_medians(idx, spectrum.log_power.ravel(), rings, left_out)
    has = counts > 0
    radii = 0.5 * (edges[:-1] + edges[1:])
    return radii[has], medians[has], counts[has]


def fit_power_law(
    radii: np.ndarray,
    log_profile: np.ndarray,
    counts: np.ndarray,
    *,
    bin_width: float,
    clip_sigma: float = 2.5,
    iterations: int = 5,
    degree: int = 1,
) -> PowerLawFit:
    """Weighted least squares of the log profile on ``log r`` (``degree`` 1: a power law, 2: with
    curvature) over ``[1.5 bins, 0.5]``, dropping bins that stand far *above* the fit (bands of
    interference) until stable. Beyond the range the trend is held constant."""
    r_low = 1.5 * bin_width
    use = (radii >= r_low) & (radii <= 0.5)
    if use.sum() < 3:
        use = radii > 0
    keep = use.copy()
    coef = np.zeros(3)
    coef[0] = float(np.median(log_profile[use]))
    scatter = 1.0
    r_high = float(radii[use].max())

    def trend(r: np.ndarray) -> np.ndarray:
        u = np.log(np.clip(r, r_low, r_high))
        return coef[0] + coef[1] * u + coef[2] * u**2

    for _ in range(iterations):
        x, y, wts = np.log(radii[keep]), log_profile[keep], np.sqrt(counts[keep])
        if x.size > degree and np.ptp(x) > 0:
            fitted = np.polyfit(x, y, degree, w=wts)[::-1]
            coef[:] = 0.0
            coef[: fitted.size] = fitted
        res = log_profile - trend(radii)
        mad = float(np.median(np.abs(res[keep] - np.median(res[keep])))) if keep.any() else 0.0
        scatter = max(1.4826 * mad, 0.05)
        new_keep = use & (res <= clip_sigma * scatter)
        if new_keep.sum() < 3 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return PowerLawFit(
        intercept=float(coef[0]),
        slope=float(coef[1]),
        r_low=r_low,
        r_high=r_high,
        scatter=scatter,
        curvature=float(coef[2]),
    )


__all__ = [
    "MIN_KEPT",
    "MIN_KEPT_SHARE",
    "PowerLawFit",
    "Spectrum",
    "fit_power_law",
    "group_medians",
    "kept_enough",
    "masked_group_medians",
    "power_spectrum",
    "radial_profile",
    "tile_brightness",
]
