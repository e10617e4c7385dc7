"""Radially averaged power spectra and the distance between two image sets' spectra (DESIGN.md §6:
a download-free check that generated images have the data's frequency content)."""

from __future__ import annotations

import numpy as np

from sagd_core.spectral.grid import R_MAX, radius_grid


def radial_power(
    images: np.ndarray, *, num_bins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(radii, mean power)`` of ``(N, C, H, W)`` images (mean removed per image and channel),
    averaged over images, channels and rings of equal width up to ``R_MAX``."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {x.shape}")
    h, w = x.shape[-2:]
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    power = (np.abs(np.fft.fft2(x, norm="ortho")) ** 2).mean(axis=(0, 1))
    r = radius_grid(h, w, half=False)
    bins = num_bins or max(h, w) // 2
    edges = np.linspace(0.0, R_MAX + 1e-9, bins + 1)
    idx = np.clip(np.digitize(r.ravel(), edges) - 1, 0, bins - 1)
    sums = np.bincount(idx, weights=power.ravel(), minlength=bins)
    counts = np.bincount(idx, minlength=bins)
    keep = counts > 0
    centres = 0.5 * (edges[:-1] + edges[1:])
    return centres[keep], sums[keep] / counts[keep]


def spectrum_distance(a: np.ndarray, b: np.ndarray, *, floor: float = 1e-10) -> float:
    """RMS difference of the two sets' radial power spectra in dB (DC ring excluded)."""
    ra, pa = radial_power(a)
    rb, pb = radial_power(b)
    if ra.shape != rb.shape or not np.allclose(ra, rb):
        raise ValueError("both image sets must have the same size")
    diff = 10.0 * (np.log10(pa[1:] + floor) - np.log10(pb[1:] + floor))  # ring 0 holds DC
    return float(np.sqrt(np.mean(diff**2)))


__all__ = ["radial_power", "spectrum_distance"]
