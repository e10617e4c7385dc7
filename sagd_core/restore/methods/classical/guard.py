"""A self-check that needs no clean image: the *probe band* (issue: never worse than the notch
without saying so).

For a band-limited noise region, a clean band of the same image next to it (radial shells
just inside and outside the region's radii, with the same number of bins, clear of every
region) gets synthetic noise of the level estimated for the region. The Wiener
filter restores it, and its error against what was hidden is compared with the notch's error
(which deletes the probe band: its error is the band's own energy). When the filter loses, the
region falls back to the notch with a warning. The probe runs on a central crop of at most
``PROBE_SIDE``² (frequencies in cycles/pixel do not change with a crop) to stay cheap.

For fitted regions (sinusoids) the check is on the residual: after the fit, a region should look
like its surroundings; one that still stands ``RESIDUAL_RATIO`` times above them holds something
the fit did not explain, and the notch deletes what is left there. If the fit explained less than
``EXPLAINED_SHARE`` of the region's power (a corruption that is not a sinusoid), it is dropped
first: a wrong sinusoid leaks into every bin. Real lines with more around them (a screen's
sidebands) keep their fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sagd_core.restore.methods.classical.wiener import wiener_denoise
from sagd_core.spectral.fft import rfft2

PROBE_SIDE = 256
_PROBE_SEED = 20261206
#: A fitted region whose residual still stands this many times above its surroundings (power
#: per bin) was not explained by the fit: the notch deletes what is left.
RESIDUAL_RATIO = 4.0
#: A fit that explains at least this share of its region's power found real lines: when the
#: region fails the residual check, the fit is kept (it removes the lines' leakage) and only the
#: rest is deleted; a fit that explains less is dropped (narrow-band noise is not a sinusoid).
EXPLAINED_SHARE = 0.75
#: The surroundings: bins this many DFT bins outside the region (inner, outer).
_RING_BINS = (2, 6)


@dataclass(frozen=True)
class ProbeVerdict:
    """Errors (sum of squared spectral differences over the probe bins) of both candidates."""

    estimator_error: float
    notch_error: float
    bins: int

    @property
    def estimator_wins(self) -> bool:
        return self.estimator_error < self.notch_error

    def describe(self) -> dict[str, object]:
        return {
            "probe_bins": self.bins,
            "estimator_error": self.estimator_error,
            "notch_error": self.notch_error,
            "chosen": "estimator" if self.estimator_wins else "notch",
        }


def _crop_masks(full: np.ndarray, height: int, width: int) -> np.ndarray:
    """A full-grid mask ``(H, W)`` read at the frequencies of a ``height × width`` grid (nearest
    bin), on that grid's half ``(height, width//2+1)``."""
    big_h, big_w = full.shape
    ky = np.rint(np.fft.fftfreq(height) * big_h).astype(int) % big_h
    kx = np.rint(np.fft.rfftfreq(width) * big_w).astype(int) % big_w
    return np.asarray(full[ky[:, None], kx[None, :]], dtype=np.float64)


def probe_shell(region: np.ndarray, band: np.ndarray, width: int) -> np.ndarray | None:
    """A half-grid probe mask: bins clear of ``band`` in the radial shells on both sides of
    ``region`` (half-grid masks of a ``width``-wide image), as many as the region holds; None
    if they do not fit."""
    h = region.shape[0]
    r = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(width)[None, :]).ravel()
    inside = region.ravel() > 0
    need = int(inside.sum())
    if need == 0:
        return None
    lo, hi = float(r[inside].min()), float(r[inside].max())
    free = (band.ravel() == 0) & (r > 0) & ((r < lo) | (r > hi))
    idx = np.flatnonzero(free)
    if idx.size < need:
        return None
    # Nearest in log-radius to either edge: the probe brackets the region's radii, so its
    # signal-to-noise ratio brackets the region's (a shell on one side only is biased).
    dist = np.minimum(np.abs(np.log(r[idx] / lo)), np.abs(np.log(r[idx] / hi)))
    chosen = idx[np.argsort(dist, kind="stable")[:need]]
    probe = np.zeros(r.size)
    probe[chosen] = 1.0
    return probe.reshape(region.shape)


def check_noise_region(
    y: np.ndarray,
    region_full: np.ndarray,
    band_full: np.ndarray,
    level: list[float],
    white_std: float,
) -> ProbeVerdict | None:
    """Probe the Wiener filter against the notch for one noise region of ``y`` ``(C, H, W)``
    (model range); ``region_full``/``band_full``: full-grid masks; ``level``: the estimated
    in-band noise power per bin and channel. None when no probe band fits."""
    c, h, w = y.shape
    ch, cw = min(h, PROBE_SIDE), min(w, PROBE_SIDE)
    crop = y[:, (h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]
    region = _crop_masks(region_full, ch, cw)
    band = _crop_masks(band_full, ch, cw)
    probe = probe_shell(region, band, cw)
    if probe is None:
        return None
    rng = np.random.default_rng(_PROBE_SEED)
    white = rng.standard_normal((c, ch, cw))
    spectrum = rfft2(white) * np.sqrt(np.asarray(level, dtype=np.float64))[:, None, None] * probe
    synthetic = np.fft.irfft2(spectrum, s=(ch, cw), norm="ortho")
    hidden = rfft2(crop)
    out, _ = wiener_denoise(crop + synthetic, {0: probe}, np.maximum(band, probe), white_std)
    weight = probe * _multiplicity(ch, cw)
    diff = rfft2(out) - hidden
    estimator_error = float(np.sum((diff.real**2 + diff.imag**2) * weight))
    notch_error = float(np.sum((hidden.real**2 + hidden.imag**2) * weight))
    return ProbeVerdict(estimator_error, notch_error, int(probe.sum()))


def _grown(mask: np.ndarray, k: int) -> np.ndarray:
    """``mask`` dilated by ``k`` bins on the periodic frequency grid (a square neighbourhood)."""
    out = mask.copy()
    for axis in (0, 1):
        step = out.copy()
        for shift in range(1, k + 1):
            step |= np.roll(out, shift, axis=axis) | np.roll(out, -shift, axis=axis)
        out = step
    return out


def residual_ratio(power: np.ndarray, region: np.ndarray, band: np.ndarray) -> float:
    """Mean power per bin of a residual's
    :func:`~sagd_core.restore.methods.classical.sinusoid.windowed_power` inside ``region`` over the
    mean in a ring around it clear of ``band`` (full-grid boolean masks); ``inf`` without a
    ring. A fit that explained the region leaves it like its surroundings (ratio ≈ 1)."""
    ring = _grown(region, _RING_BINS[1]) & ~_grown(region, _RING_BINS[0]) & ~band
    if not ring.any() or not region.any():
        return float("inf")
    return float(power[region].mean() / max(power[ring].mean(), 1e-300))


def _multiplicity(height: int, width: int) -> np.ndarray:
    from sagd_core.spectral.grid import half_grid_multiplicity

    return half_grid_multiplicity(height, width)


__all__ = [
    "EXPLAINED_SHARE",
    "PROBE_SIDE",
    "RESIDUAL_RATIO",
    "ProbeVerdict",
    "check_noise_region",
    "probe_shell",
    "residual_ratio",
]
