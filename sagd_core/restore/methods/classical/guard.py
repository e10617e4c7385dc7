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

A *learned* fill is checked the same way, but a band model acts only on its own band, so the
probe cannot be a neighbouring shell: :func:`scaled_probe` brings clean content *into* the band
instead. A reference restoration (the classical tier's) is decimated by an integer factor ``z``
(Fourier cropping: probe bin ``k`` holds the reference's bin ``k``, i.e. the frequency ``f/z`` of
the original lands at ``f``), chosen so that every probe-band bin comes from a trusted bin of
the original; natural images are close to scale-invariant, so the probe's band relates to its
context as the original's does. Synthetic noise at the level estimated for each region is added
there, both candidates restore the probe, and their errors against the hidden band are compared
region by region (:func:`probe_region_errors`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sagd_core.restore.methods.classical.wiener import wiener_denoise
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.fft import rfft2
from sagd_core.spectral.masks import band_mask

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


#: Decimation factors of the learned probe, smallest first (:func:`scaled_probe`).
SCALED_PROBE_FACTORS = (2, 3, 4)
#: Smallest side of a learned probe (pixels): smaller ones hold too few band bins to judge.
SCALED_PROBE_MIN_SIDE = 16
#: Largest side of a learned probe: the reference is cropped centrally to ``z`` times this first.
SCALED_PROBE_MAX_SIDE = 128


@dataclass(frozen=True)
class ScaledProbe:
    """A probe image for a learned fill: ``clean`` ``(C, h, w)`` (model range) whose band holds
    content from trusted bins of the original, ``observed`` (``clean`` plus synthetic noise in
    the band, and broadband noise when declared), the decimation ``factor`` and one half-grid
    mask per region of the band at the probe's size."""

    clean: np.ndarray
    observed: np.ndarray
    factor: int
    regions: list[np.ndarray]

    def describe(self) -> dict[str, object]:
        return {"factor": self.factor, "size": list(self.clean.shape[-2:])}


def _decimated(reference: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """``reference`` ``(C, H, W)`` decimated to ``height × width`` by Fourier cropping: probe bin
    ``k`` takes the reference's bin ``k`` (orthonormal transforms, rescaled to keep pixel
    values)."""
    big_h, big_w = reference.shape[-2:]
    ky = np.rint(np.fft.fftfreq(height) * height).astype(int) % big_h
    kx = np.arange(width // 2 + 1)
    spectrum = rfft2(reference)[:, ky[:, None], kx[None, :]]
    spectrum = spectrum * math.sqrt(height * width / (big_h * big_w))
    return np.fft.irfft2(spectrum, s=(height, width), norm="ortho")


def _clear_factor(spec: BandSpec, crop: tuple[int, int], probe: tuple[int, int]) -> bool:
    """Whether every band bin of the ``probe``-sized grid comes from a bin outside the band of
    the ``crop``-sized grid (the same integer index, :func:`_decimated`)."""
    (ch, cw), (ph, pw) = crop, probe
    source = band_mask(spec, ch, cw, half=False) > 0
    ky = np.rint(np.fft.fftfreq(ph) * ph).astype(int) % ch
    kx = np.arange(pw // 2 + 1)
    return not bool((source[ky[:, None], kx[None, :]] & (band_mask(spec, ph, pw) > 0)).any())


def scaled_probe(
    reference: np.ndarray,
    spec: BandSpec,
    subs: list[BandSpec],
    levels: list[list[float]],
    white_std: float = 0.0,
) -> ScaledProbe | None:
    """The probe of a learned fill (module docstring) from ``reference`` ``(C, H, W)``: the
    smallest factor of :data:`SCALED_PROBE_FACTORS` that clears the band, ``levels[i]`` the
    noise power per bin and channel put into region ``subs[i]``; None when no factor gives a
    clear probe of at least :data:`SCALED_PROBE_MIN_SIDE` pixels with every region present."""
    c, h, w = reference.shape
    for factor in SCALED_PROBE_FACTORS:
        ch, cw = min(h, factor * SCALED_PROBE_MAX_SIDE), min(w, factor * SCALED_PROBE_MAX_SIDE)
        ph, pw = ch // factor, cw // factor
        if min(ph, pw) < SCALED_PROBE_MIN_SIDE:
            return None
        try:
            regions = [(band_mask(sub, ph, pw) > 0).astype(np.float64) for sub in subs]
            clear = _clear_factor(spec, (ch, cw), (ph, pw))
        except ValueError:  # a region with no bin at this size
            continue
        if not clear or not all(r.any() for r in regions):
            continue
        top, left = (h - ch) // 2, (w - cw) // 2
        clean = _decimated(reference[:, top : top + ch, left : left + cw], factor, ph, pw)
        rng = np.random.default_rng(_PROBE_SEED)
        gain = np.zeros((c, ph, pw // 2 + 1))
        for region, level in zip(regions, levels, strict=True):
            gain = np.maximum(gain, np.sqrt(np.asarray(level))[:, None, None] * region)
        noise = np.fft.irfft2(
            rfft2(rng.standard_normal((c, ph, pw))) * gain, s=(ph, pw), norm="ortho"
        )
        if white_std > 0:
            noise = noise + white_std * rng.standard_normal((c, ph, pw))
        return ScaledProbe(clean=clean, observed=clean + noise, factor=factor, regions=regions)
    return None


def probe_region_errors(probe: ScaledProbe, estimate: np.ndarray) -> list[float]:
    """Per region of ``probe``, the squared error of ``estimate`` ``(C, h, w)`` against the
    hidden clean content (full-grid sum over the region's bins and the channels)."""
    h, w = probe.clean.shape[-2:]
    diff = rfft2(estimate) - rfft2(probe.clean)
    power = (diff.real**2 + diff.imag**2).sum(axis=0) * _multiplicity(h, w)
    return [float((power * region).sum()) for region in probe.regions]


def _multiplicity(height: int, width: int) -> np.ndarray:
    from sagd_core.spectral.grid import half_grid_multiplicity

    return half_grid_multiplicity(height, width)


__all__ = [
    "EXPLAINED_SHARE",
    "PROBE_SIDE",
    "RESIDUAL_RATIO",
    "SCALED_PROBE_FACTORS",
    "SCALED_PROBE_MAX_SIDE",
    "SCALED_PROBE_MIN_SIDE",
    "ProbeVerdict",
    "ScaledProbe",
    "check_noise_region",
    "probe_region_errors",
    "probe_shell",
    "residual_ratio",
    "scaled_probe",
]
