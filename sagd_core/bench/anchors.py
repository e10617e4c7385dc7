"""Outside estimators the real-size benchmark compares the classical tier with (anchors).

None of them is on the restore path. Two need optional packages of the ``bench`` extra
(``pip install -e '.[bench]'``) and return None when it is absent, so that the benchmark prints
the reason and goes on:

* :func:`column_mean_destriper`: the textbook destriper (numpy only);
* :func:`wavelet_fft_destriper`: the wavelet-FFT destriper of Münch, Trtik, Marone and Stampanoni
  (Optics Express 17(10), 2009), the method ``pystripe`` is built on, written here from the
  paper's description with PyWavelets (MIT licence);
* :func:`bm3d_correlated`: BM3D in its correlated-noise mode (the ``bm3d`` package, licensed for
  non-commercial use only: a benchmark anchor, never a dependency).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from sagd_core.spectral.bands import BandSpec


def column_mean_destriper(y: np.ndarray, spec: BandSpec) -> np.ndarray:
    """Each column's mean minus its smoothed version (Gaussian, σ = 5 px), subtracted from the
    column."""
    del spec
    means = y.mean(axis=0, keepdims=True)
    return y - (means - ndimage.gaussian_filter1d(means, 5.0, axis=1, mode="reflect"))


def _pywt() -> Any | None:
    try:
        import pywt
    except ImportError:
        return None
    return pywt


def wavelet_fft_destriper(
    y: np.ndarray, spec: BandSpec, *, wavelet: str = "db3", levels: int = 5, sigma: float = 2.0
) -> np.ndarray | None:
    """Column stripes (constant along y) removed in the wavelet domain: the image is decomposed
    into ``levels`` levels; at each level the vertical-detail band (which holds the stripes'
    vertical edges) is Fourier transformed along the columns, where a stripe is the zero
    frequency, and damped by ``1 − exp(−k²/(2 sigma²))`` (k the frequency index along y); then
    the image is recomposed. None when PyWavelets is not installed."""
    del spec
    pywt = _pywt()
    if pywt is None:
        return None

    def one(channel: np.ndarray) -> np.ndarray:
        depth = min(levels, pywt.dwt_max_level(min(channel.shape), wavelet))
        coeffs = pywt.wavedec2(channel, wavelet, level=depth)
        damped = [coeffs[0]]
        for horizontal, vertical, diagonal in coeffs[1:]:
            spectrum = np.fft.rfft(vertical, axis=0)
            k = np.arange(spectrum.shape[0], dtype=np.float64)[:, None]
            spectrum *= 1.0 - np.exp(-(k**2) / (2.0 * sigma**2))
            vertical = np.fft.irfft(spectrum, n=vertical.shape[0], axis=0)
            damped.append((horizontal, vertical, diagonal))
        out = pywt.waverec2(damped, wavelet)
        return np.asarray(out[: channel.shape[0], : channel.shape[1]])

    y = np.asarray(y, np.float64)
    if y.ndim == 2:
        return one(y)
    return np.stack([one(y[..., c]) for c in range(y.shape[-1])], axis=-1)


def bm3d_correlated(y: np.ndarray, spec: BandSpec, sigma: float) -> np.ndarray | None:
    """BM3D with the band's noise PSD (annulus [0.15, 0.30), std 0.06, the benchmark's
    band-limited noise) plus white noise of std ``sigma``; None when ``bm3d`` is absent."""
    del spec
    try:
        import bm3d
    except ImportError:
        return None
    if not hasattr(np, "trapz"):  # bm3d 4.0.3 calls np.trapz, which numpy 2.4 removed
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
    n = y.shape[0]
    r = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    band = (r >= 0.15) & (r < 0.30)
    psd = band * (0.06**2 / band.mean()) + sigma**2
    psd = psd * n * n  # bm3d's PSD scaling: the FFT of the noise without normalisation
    if y.ndim == 2:
        return np.asarray(bm3d.bm3d(y, sigma_psd=psd))
    return np.stack([bm3d.bm3d(y[..., c], sigma_psd=psd) for c in range(3)], axis=-1)


def missing_anchors() -> list[str]:
    """Why an anchor will be skipped, one line each (empty when all can run)."""
    lines = []
    if _pywt() is None:
        lines.append(
            "anchor wavelet-fft: skipped (PyWavelets is not installed: pip install -e '.[bench]')"
        )
    try:
        import bm3d  # noqa: F401
    except ImportError:
        lines.append(
            "anchor bm3d: skipped (the optional 'bm3d' package is not installed: "
            "pip install -e '.[bench]'; non-commercial licence, benchmark only)"
        )
    return lines
