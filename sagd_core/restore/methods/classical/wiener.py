"""Band-limited (and broadband) noise: its power spectrum estimated from the image, then three
estimators blended per channel by their estimated risk.

The noise power spectrum is ``N(f) = σ² + Σ_j N_j M_j(f)``: the declared broadband level ``σ²``
(model range) plus one flat level per noise region, estimated from the image as the mean excess
of the region's power over the spectrum that the rings of trusted bins at the same radii give
(interpolated in log-log across radii that hold no trusted bin, i.e. a local power law). The
trusted bins hold the broadband noise as well, so that excess is the region's own level.
For RGB everything runs in opponent channels (:mod:`~.opponent`), each with its own estimated
spectrum (noise independent per RGB channel stays so; noise shared by the channels lands in the
luminance).

The estimators:

1. *Patch DCTs* (:mod:`~.dct_shrinkage`): hard thresholding, then an empirical Wiener filter, of
   overlapping 8×8 DCTs with each coefficient's coloured-noise variance (:mod:`~.patch_noise`).
2. *Fourier tiles* with the patch-DCT estimate as pilot: overlapping windowed 32×32 tiles, in
   each the gain ``|P_t|² / (|P_t|² + N_t)`` with ``P_t`` the pilot's tile spectrum and ``N_t``
   the noise's exact tile spectrum (its autocovariance times the window's autocorrelation).
3. *Fourier tiles* with the global pilot ``Ŝ = max(smooth(|Y|² − N), 0)``, ``G = Ŝ / (Ŝ + N)``
   (the estimator this module had before the patch DCTs).

Patch DCTs win on edges and flat areas, Fourier tiles on texture and smooth, band-limited
content; the convex weights per channel minimise Stein's unbiased risk estimate
(:mod:`~.sure_blend`), measured on a central window of at most ``SURE_SIDE``² pixels. Images
smaller than a patch get the global Wiener filter alone, those smaller than two tiles the patch
DCTs alone. Without broadband noise the trusted bins are put back exactly at the end (only the
band changes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sagd_core.restore.methods.classical.dct_shrinkage import (
    PATCH,
    STRIDE_HARD,
    STRIDE_WIENER,
    dct_denoise,
)
from sagd_core.restore.methods.classical.opponent import from_opponent, to_opponent
from sagd_core.restore.methods.classical.patch_noise import (
    autocovariance,
    dct2_basis,
    variances_from_autocovariance,
)
from sagd_core.restore.methods.classical.sure_blend import blend_weights, divergence, noise_probe
from sagd_core.spectral.fft import irfft2, rfft2
from sagd_core.spectral.grid import full_from_half, half_grid_multiplicity, radius_grid

#: Local stage: tile side and stride (pixels); stride 8 was measured 0.05 dB better on the
#: training photos at 2-3× the time.
TILE = 32
STRIDE = 16
#: The SURE blend: the step of the Monte Carlo divergence (times a noise sample), the side of
#: the central window whose risk is estimated, the probe's halo around it, the margin of the
#: perturbed run and the grid its origin sits on (DCT strides and tile stride divide it). An
#: estimate reaches ``2 (PATCH − 1)`` pixels (two patch stages) plus ``TILE − 1`` (a tile on
#: the patch estimate): with that margin the run's own border does not reach the window, whose
#: estimates are those of a run on the whole image (to rounding).
SURE_STEP = 0.1
SURE_SIDE = 192
_HALO = 16
_MARGIN = 2 * (PATCH - 1) + TILE
_ALIGN = math.lcm(STRIDE_HARD, STRIDE_WIENER, STRIDE)
#: Smoothing of the pilot's spectrum estimate (bins, Gaussian σ, cut at ``_TRUNCATE`` σ).
PILOT_SMOOTHING = 1.0
_TRUNCATE = 4.0
#: Tiles per batch of the local stage's transforms (a batch that stays in cache is faster).
_TILE_BLOCK = 384


@dataclass(frozen=True)
class NoiseEstimate:
    """The noise model used: per region and channel the flat in-band level (per bin, model
    range), and the total noise std it adds per pixel."""

    levels: dict[int, list[float]]
    band_std: dict[int, list[float]]


def _ring_index(height: int, width: int) -> np.ndarray:
    return np.floor(radius_grid(height, width) * min(height, width) + 0.5).astype(np.int64)


def radial_signal_power(power: np.ndarray, trusted: np.ndarray, width: int) -> np.ndarray:
    """Per channel, the mean power of each ring of trusted bins (robust: median / ln 2), spread
    back over the half grid ``(C, H, W//2+1)``; rings without trusted bins are interpolated in
    log-log (a local power law)."""
    c, h, wh = power.shape
    rings = _ring_index(h, width)
    n_rings = int(rings.max()) + 1
    out = np.empty((c, h, wh))
    flat_rings = rings[trusted]
    order = np.argsort(flat_rings, kind="stable")
    sorted_rings = flat_rings[order]
    bounds = np.searchsorted(sorted_rings, np.arange(n_rings + 1))
    counts = np.diff(bounds)
    filled_ring = (counts > 0) & (np.arange(n_rings) > 0)
    # one row per ring, padded with +inf: after a sort along rows, a ring's median is its middle
    # element (or the mean of the two middle ones)
    slot = np.arange(sorted_rings.size) - bounds[sorted_rings]
    rows = np.arange(n_rings)
    mid = (np.maximum(counts - 1, 0) // 2, counts // 2)
    for ch in range(c):
        table = np.full((n_rings, max(int(counts.max()), 1)), np.inf)
        table[sorted_rings, slot] = power[ch][trusted][order]
        table.sort(axis=1)
        median = 0.5 * (table[rows, mid[0]] + table[rows, mid[1]])
        profile = np.where(filled_ring, median / np.log(2.0), np.nan)
        valid = np.flatnonzero(np.isfinite(profile) & (profile > 0))
        if valid.size == 0:
            out[ch] = power[ch]
            continue
        log_r = np.log(np.arange(1, n_rings))
        filled = np.exp(np.interp(log_r, np.log(valid.astype(np.float64)), np.log(profile[valid])))
        full_profile = np.concatenate([[power[ch][0, 0]], filled])
        out[ch] = full_profile[rings]
    return out


def estimate_noise(
    power: np.ndarray,
    regions: dict[int, np.ndarray],
    band: np.ndarray,
    white_var: float,
    width: int,
) -> tuple[np.ndarray, NoiseEstimate]:
    """The noise power spectrum ``(C, H, W//2+1)`` and the levels behind it.

    ``regions``: noise-region index → half-grid mask; ``band``: the half-grid union of every
    region of the spec (its bins are not trusted for the signal spectrum)."""
    _c, h, _ = power.shape
    trusted = band == 0
    signal = radial_signal_power(power, trusted, width)
    mult = half_grid_multiplicity(h, width)
    noise = np.full(power.shape, white_var)
    levels: dict[int, list[float]] = {}
    stds: dict[int, list[float]] = {}
    for index, mask in regions.items():
        weight = mask * mult
        total = float(weight.sum())
        # the trusted rings hold the declared white noise as well: the excess is the band's own
        excess = np.einsum("chw,hw->c", power - signal, weight)
        per_channel = [max(float(e) / total, 0.0) if total > 0 else 0.0 for e in excess]
        levels[index] = per_channel
        stds[index] = [float(np.sqrt(lv * total / (h * width))) for lv in per_channel]
        noise = np.maximum(noise, white_var + np.asarray(per_channel)[:, None, None] * mask)
    return noise, NoiseEstimate(levels=levels, band_std=stds)


def _smooth_half(values: np.ndarray, width: int) -> np.ndarray:
    """Gaussian smoothing of half-grid arrays ``(C, H, W//2+1)`` on the periodic full grid: the
    half grid and the columns on either side that the kernel reaches (read from their symmetric
    partners), filtered (periodic along the rows), cut back to the half grid."""
    from scipy import ndimage  # imported on use: start-up of the other paths

    h, half = values.shape[-2:]
    reach = int(_TRUNCATE * PILOT_SMOOTHING + 0.5)  # the kernel's radius (scipy's rule)
    cols = np.arange(-reach, half + reach) % width  # full-grid columns
    mirrored = cols > width // 2
    rows = np.arange(h)[:, None]
    src_rows = np.where(mirrored[None, :], (-rows) % h, rows)
    src_cols = np.where(mirrored, width - cols, cols)
    extended = values[..., src_rows, src_cols[None, :]]
    smoothed = ndimage.gaussian_filter(
        extended, sigma=(0, PILOT_SMOOTHING, PILOT_SMOOTHING), mode="wrap", truncate=_TRUNCATE
    )
    return smoothed[..., reach : reach + half]


def pilot_gain(power: np.ndarray, noise: np.ndarray, width: int) -> np.ndarray:
    """The global empirical Wiener gain ``Ŝ / (Ŝ + N)`` on the half grid."""
    signal = np.maximum(_smooth_half(power - noise, width), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(noise > 0, signal / (signal + noise), 1.0)


def pilot_estimate(
    y: np.ndarray, spectrum: np.ndarray, power: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """Stage 1: the global empirical Wiener estimate ``(C, H, W)``."""
    h, w = y.shape[-2:]
    return irfft2(spectrum * pilot_gain(power, noise, w), h, w)


def _window(tile: int) -> np.ndarray:
    """Square-root periodic Hann window: analysis × synthesis windows sum to a constant."""
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(tile) / tile)
    return np.sqrt(hann)


def tile_noise_power(noise_full: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Exact ``E|fft(w·n)|²`` on a ``T × T`` tile for stationary noise of power spectrum
    ``noise_full`` ``(C, H, W)`` (orthonormal convention): the autocovariance times the
    window's autocorrelation, folded onto the tile's lags."""
    return tile_noise_from_autocovariance(np.fft.ifft2(noise_full).real, window)


def tile_noise_from_autocovariance(cov: np.ndarray, window: np.ndarray) -> np.ndarray:
    """:func:`tile_noise_power` from the noise's autocovariance ``c(d)`` ``(C, H, W)``
    (:func:`~.patch_noise.autocovariance`)."""
    t = window.size
    c, h, w = cov.shape
    lags = np.arange(-(t - 1), t)
    auto = np.correlate(window, window, mode="full")  # a(d), d = -(t-1) … t-1
    cov_lags = cov[:, lags[:, None] % h, lags[None, :] % w]
    weighted = cov_lags * auto[:, None] * auto[None, :]
    folded = np.zeros((c, t, t))
    idx = lags % t
    for ch in range(c):
        np.add.at(folded[ch], (idx[:, None], idx[None, :]), weighted[ch])
    return np.maximum(np.fft.fft2(folded).real, 0.0)


def local_wiener(
    y: np.ndarray,
    pilot: np.ndarray,
    noise_full: np.ndarray,
    tile_noise: np.ndarray | None = None,
) -> np.ndarray:
    """Stage 2: empirical Wiener filtering on overlapping tiles (see the module docstring).
    ``tile_noise``: :func:`tile_noise_power` of ``noise_full`` when already known."""
    if tile_noise is None:
        tile_noise = tile_noise_power(noise_full, _window(TILE))
    return local_wieners(y, [pilot], tile_noise)[0]


def local_wieners(
    y: np.ndarray, pilots: list[np.ndarray], tile_noise: np.ndarray
) -> list[np.ndarray]:
    """:func:`local_wiener` of ``y`` ``(C, H, W)`` with each of ``pilots``: the tiles of ``y``
    are transformed once for all of them. Single precision, real FFTs, the tiles in batches of
    whole tile rows; the overlap-add puts each tile's ``(T/S)²`` blocks of ``S × S`` pixels in
    place with one array addition per block position (``S`` divides ``T``)."""
    from scipy import fft  # imported on use: start-up of the other paths

    c, h, w = y.shape
    t, s = TILE, STRIDE
    m = t // s  # tiles over each pixel along an axis
    win = _window(t)
    win2d = np.outer(win, win).astype(np.float32)
    noise_t = tile_noise[:, None, None, :, : t // 2 + 1].astype(np.float32)
    has_noise = None if bool(np.all(noise_t > 0)) else noise_t > 0
    pad = t // 2
    widths = ((0, 0), (pad, pad + t), (pad, pad + t))
    ny, nx = (h + pad) // s + 1, (w + pad) // s + 1  # tile origins 0, S, … ≤ H + pad

    def tiles(img: np.ndarray) -> np.ndarray:  # (C, ny, nx, T, T), a view
        padded = np.pad(img.astype(np.float32), widths, mode="reflect")
        view = np.lib.stride_tricks.sliding_window_view(padded, (t, t), axis=(1, 2))
        return view[:, : (ny - 1) * s + 1 : s, : (nx - 1) * s + 1 : s]

    tiles_y = tiles(y)
    tiles_p = [tiles(p) for p in pilots]
    accs = [np.zeros((c, (ny + m - 1) * s, (nx + m - 1) * s), dtype=np.float32) for _ in pilots]
    rows = max(1, _TILE_BLOCK // (c * nx))
    for r0 in range(0, ny, rows):
        r1 = min(r0 + rows, ny)
        spec_y = fft.rfft2(tiles_y[:, r0:r1] * win2d)
        for view, acc in zip(tiles_p, accs, strict=True):
            spec_p = fft.rfft2(view[:, r0:r1] * win2d)
            gain = spec_p.real * spec_p.real
            gain += spec_p.imag * spec_p.imag
            with np.errstate(invalid="ignore", divide="ignore"):
                gain /= gain + noise_t
            if has_noise is not None:  # no noise at a frequency: the gain is 1
                gain = np.where(has_noise, gain, np.float32(1.0))
            out = fft.irfft2(spec_y * gain, s=(t, t))
            out *= win2d
            _overlap_add(acc, out, r0, s)
    # Σ window² over the tiles: separable, one sum per axis
    sums = []
    for count in (ny, nx):
        sums.append(np.zeros((count + m - 1) * s, dtype=np.float32))
        _overlap_add_1d(sums[-1], win.astype(np.float32) ** 2, count, s)
    norm = np.maximum(np.outer(*sums), np.float32(1e-12))
    inside = (slice(pad, pad + h), slice(pad, pad + w))
    return [(acc[:, inside[0], inside[1]] / norm[inside]).astype(np.float64) for acc in accs]


def _overlap_add(acc: np.ndarray, tiles: np.ndarray, row: int, s: int) -> None:
    """Add ``tiles`` ``(C, R, X, T, T)`` (tile rows ``row …``, origins every ``s`` pixels) to
    ``acc`` ``(C, ·, ·)``: block ``(a, b)`` of ``s × s`` pixels of every tile at once."""
    c, rows, nx, t, _ = tiles.shape
    m = t // s
    blocks = acc.reshape(c, acc.shape[1] // s, s, acc.shape[2] // s, s)
    parts = tiles.reshape(c, rows, nx, m, s, m, s)
    for a in range(m):
        for b in range(m):
            blocks[:, row + a : row + a + rows, :, b : b + nx, :] += parts[
                :, :, :, a, :, b, :
            ].transpose(0, 1, 3, 2, 4)


def _overlap_add_1d(acc: np.ndarray, values: np.ndarray, count: int, s: int) -> None:
    """``values`` ``(T,)`` added at ``count`` origins every ``s`` samples of ``acc``."""
    m = values.size // s
    blocks = acc.reshape(-1, s)
    for a in range(m):
        blocks[a : a + count] += values[a * s : (a + 1) * s]


def fourier_wiener(
    y: np.ndarray, spectrum: np.ndarray, power: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """The Fourier-domain estimator: the global pilot, then the local tiles when the image holds
    two of them."""
    h, w = y.shape[-2:]
    pilot = pilot_estimate(y, spectrum, power, noise)
    return local_wiener(y, pilot, full_from_half(noise, w)) if min(h, w) >= 2 * TILE else pilot


@dataclass(frozen=True)
class NoiseModel:
    """An image's spectrum (orthonormal, half grid), its power and the noise estimated from it
    for one set of regions (:func:`noise_model`)."""

    spectrum: np.ndarray
    power: np.ndarray
    noise: np.ndarray
    estimate: NoiseEstimate


def noise_model(
    y: np.ndarray, regions: dict[int, np.ndarray], band: np.ndarray, white_std: float
) -> NoiseModel:
    """:func:`estimate_noise` on ``y`` ``(C, H, W)``, with the spectrum it was read from."""
    spectrum = rfft2(y)
    power = spectrum.real**2 + spectrum.imag**2
    noise, estimate = estimate_noise(power, regions, band, white_std**2, y.shape[-1])
    return NoiseModel(spectrum, power, noise, estimate)


def wiener_denoise(
    y: np.ndarray,
    regions: dict[int, np.ndarray],
    band: np.ndarray,
    white_std: float,
    model: NoiseModel | None = None,
) -> tuple[np.ndarray, NoiseEstimate]:
    """Denoise ``y`` ``(C, H, W)`` (model range) for band-limited noise in ``regions``
    (index → half-grid mask) plus white noise of std ``white_std``; the estimate reports the
    noise per input channel. ``model``: :func:`noise_model` of the same arguments when already
    known."""
    _c, h, w = y.shape
    if model is None:
        model = noise_model(y, regions, band, white_std)
    spectrum, power, noise, estimate = model.spectrum, model.power, model.noise, model.estimate
    union = np.max(np.stack(list(regions.values())), axis=0) if regions else np.zeros_like(band)
    # Untrusted bins that hold no modelled noise (other regions of the spec; the real band while
    # the guard probes a shell next to it) are kept out of the estimators: what they hold would
    # pass for signal and, through the patches' coarse frequency resolution, leak next to them.
    # They get the global Wiener filter for the declared broadband noise alone (nothing with
    # σ = 0).
    other = np.clip(band - union, 0.0, 1.0)
    held = None
    if np.any(other > 0):
        held = irfft2(other * pilot_gain(power, noise, w) * spectrum, h, w)
        spectrum = spectrum * (1.0 - other)
        power = spectrum.real**2 + spectrum.imag**2
    x = y if held is None else irfft2(spectrum, h, w)
    if min(h, w) < PATCH:
        out = pilot_estimate(x, spectrum, power, noise)
        if white_std == 0.0 and regions:
            out = irfft2((1.0 - union) * spectrum + union * rfft2(out), h, w)
    else:  # the trusted bins are put back there (the transform is per pixel and orthonormal)
        opp = to_opponent(x)
        out = from_opponent(
            _patch_denoise(opp, regions, band, white_std, noise if opp is x else None)
        )
    return (out if held is None else out + held), estimate


def _sure_window(n: int) -> tuple[slice, slice, slice]:
    """Along one axis of length ``n``: the risk window (central, ``SURE_SIDE``), the probe's
    support (the window and a halo) and the region the perturbed run needs (a margin more,
    starting on a multiple of ``_ALIGN`` so that its patch and tile grids are the image's)."""
    side = min(n, SURE_SIDE)
    lo = (n - side) // 2
    hi = lo + side
    outer_lo = max(0, lo - _MARGIN) // _ALIGN * _ALIGN
    return (
        slice(lo, hi),
        slice(max(0, lo - _HALO), min(n, hi + _HALO)),
        slice(outer_lo, min(n, hi + _MARGIN)),
    )


def _patch_denoise(
    y: np.ndarray,
    regions: dict[int, np.ndarray],
    band: np.ndarray,
    white_std: float,
    noise_half: np.ndarray | None = None,
) -> np.ndarray:
    """The patch-DCT estimate of ``y`` ``(C, H, W)`` (opponent channels), blended per channel
    with the Fourier-tile Wiener filter by SURE (:mod:`~.sure_blend`) when the image holds two
    tiles. The risk is estimated on a central window: the divergence by a Monte Carlo step
    (``SURE_STEP`` times a noise sample on the window) through both estimators, run again on
    the window and a margin; without broadband noise only in-band differences count, and the
    trusted bins of ``y`` are put back in the result."""
    c, h, w = y.shape
    spectrum = rfft2(y)
    power = spectrum.real**2 + spectrum.imag**2
    if noise_half is None:
        noise_half, _ = estimate_noise(power, regions, band, white_std**2, w)
    cov = autocovariance(noise_half, h, w)
    variances = variances_from_autocovariance(cov, dct2_basis(PATCH))
    union = (
        np.max(np.stack(list(regions.values())), axis=0) if white_std == 0.0 and regions else None
    )

    def in_band(estimate: np.ndarray) -> np.ndarray:
        """``y`` with the estimate's band (all of it with broadband noise)."""
        if union is None:
            return estimate
        return y + irfft2(union * (rfft2(estimate) - spectrum), h, w)

    if min(h, w) < 2 * TILE:
        return in_band(dct_denoise(y, None, variances=variances).estimate)
    tile_noise = tile_noise_from_autocovariance(cov, _window(TILE))

    def candidates(v: np.ndarray, global_pilot: np.ndarray) -> list[np.ndarray]:
        patches = dct_denoise(v, None, variances=variances).estimate
        return [patches, *local_wieners(v, [patches, global_pilot], tile_noise)]

    out = candidates(y, pilot_estimate(y, spectrum, power, noise_half))
    (wy, py, oy), (wx, px, ox) = _sure_window(h), _sure_window(w)
    probe = np.zeros((c, h, w))
    probe[:, py, px] = noise_probe(noise_half, h, w)[:, py, px]
    moved_y = y + SURE_STEP * probe
    moved_spectrum = rfft2(moved_y)
    moved_power = moved_spectrum.real**2 + moved_spectrum.imag**2
    moved_pilot = pilot_estimate(moved_y, moved_spectrum, moved_power, noise_half)
    moved = candidates(moved_y[:, oy, ox], moved_pilot[:, oy, ox])
    inner = (
        slice(None),
        slice(wy.start - oy.start, wy.stop - oy.start),
        slice(wx.start - ox.start, wx.stop - ox.start),
    )
    div = np.stack(
        [
            divergence(probe[:, wy, wx], (m[inner] - o[:, wy, wx]) / SURE_STEP)
            for m, o in zip(moved, out, strict=True)
        ]
    )
    fitted = [in_band(o) for o in out]
    weights = blend_weights(y[:, wy, wx], np.stack([f[:, wy, wx] for f in fitted]), div)
    blend = weights[0][:, None, None] * fitted[0]
    for k in range(1, len(fitted)):
        blend += weights[k][:, None, None] * fitted[k]
    return blend


__all__ = [
    "NoiseEstimate",
    "NoiseModel",
    "estimate_noise",
    "fourier_wiener",
    "local_wiener",
    "local_wieners",
    "noise_model",
    "pilot_estimate",
    "pilot_gain",
    "radial_signal_power",
    "tile_noise_from_autocovariance",
    "tile_noise_power",
    "wiener_denoise",
]
