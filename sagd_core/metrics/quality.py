"""PSNR and SSIM overall, inside and outside a band (images in model range ``[-1, 1]``).

The error ``e = x − ref`` splits by Parseval into the band part ``Σ M |F e|²`` and the rest
``Σ (1−M) |F e|²`` (orthonormal DFT, full grid), so ``MSE_in + MSE_out = MSE`` exactly: in-band
PSNR is ``10 log10(range² / MSE_in)`` with MSE_in per pixel of the whole image. In-band SSIM
compares the band-filtered images ``F⁻¹ M F x`` and ``F⁻¹ M F ref`` (and out-of-band the
``1−M`` filtered ones); SSIM constants use the full image range, as for the whole image.

Arrays are ``(C, H, W)`` or ``(N, C, H, W)``; results are averaged over images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from skimage.metrics import structural_similarity

from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.grid import half_grid_multiplicity
from sagd_core.spectral.masks import band_mask

DATA_RANGE = 2.0  # [-1, 1]


def _batch(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"expected (C, H, W) or (N, C, H, W) images, got shape {arr.shape}")
    return arr


def _check_pair(x: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _batch(x), _batch(ref)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    return a, b


def _mask_for(mask: BandSpec | np.ndarray, h: int, w: int) -> np.ndarray:
    m = band_mask(mask, h, w) if isinstance(mask, BandSpec) else np.asarray(mask, np.float64)
    if m.shape != (h, w // 2 + 1):
        raise ValueError(f"mask shape {m.shape} is not the half grid {(h, w // 2 + 1)}")
    return m


def psnr_from_mse(mse: float, data_range: float = DATA_RANGE) -> float:
    return math.inf if mse <= 0 else 10.0 * math.log10(data_range**2 / mse)


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """PSNR in dB, averaged over images (each image's own MSE)."""
    a, b = _check_pair(x, ref)
    mses = ((a - b) ** 2).mean(axis=(1, 2, 3))
    return float(np.mean([psnr_from_mse(float(m), data_range) for m in mses]))


def mse_split(
    x: np.ndarray, ref: np.ndarray, mask: BandSpec | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image ``(MSE_in, MSE_out)`` with ``MSE_in + MSE_out = MSE`` (module docstring)."""
    a, b = _check_pair(x, ref)
    h, w = a.shape[-2:]
    m = _mask_for(mask, h, w)
    power = np.abs(np.fft.rfft2(a - b, norm="ortho")) ** 2 * half_grid_multiplicity(h, w)
    n = a.shape[1] * h * w
    inside = (power * m).sum(axis=(1, 2, 3)) / n
    outside = (power * (1.0 - m)).sum(axis=(1, 2, 3)) / n
    return inside, outside


def band_split(x: np.ndarray, mask: BandSpec | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(F⁻¹ M F x, F⁻¹ (1−M) F x)`` for a batch."""
    a = _batch(x)
    h, w = a.shape[-2:]
    m = _mask_for(mask, h, w)
    spec = np.fft.rfft2(a, norm="ortho")
    inside = np.fft.irfft2(spec * m, s=(h, w), norm="ortho")
    return inside, a - inside


def ssim(x: np.ndarray, ref: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Mean SSIM (scikit-image, Gaussian-free 7×7 windows) over images and channels."""
    a, b = _check_pair(x, ref)
    win = min(7, a.shape[-1], a.shape[-2])
    win -= 1 - win % 2  # odd
    if win < 3:
        raise ValueError("images are too small for SSIM (need at least 3×3)")
    vals = [
        structural_similarity(a[i, c], b[i, c], data_range=data_range, win_size=win)
        for i in range(a.shape[0])
        for c in range(a.shape[1])
    ]
    return float(np.mean(vals))


def band_energy(x: np.ndarray, mask: BandSpec | np.ndarray) -> float:
    """Mean-square energy per pixel inside the band, averaged over images."""
    a = _batch(x)
    h, w = a.shape[-2:]
    m = _mask_for(mask, h, w)
    power = np.abs(np.fft.rfft2(a, norm="ortho")) ** 2 * half_grid_multiplicity(h, w)
    return float((power * m).sum() / a.size)


def band_energy_ratio(x: np.ndarray, ref: np.ndarray, mask: BandSpec | np.ndarray) -> float:
    """Energy left in the band relative to the reference's band energy (1 = as in clean data,
    0 = band empty; P1's "energy left in the corrupted band")."""
    ref_e = band_energy(ref, mask)
    return band_energy(x, mask) / ref_e if ref_e > 0 else math.inf


@dataclass(frozen=True)
class BandMetrics:
    psnr: float
    psnr_in: float
    psnr_out: float
    ssim: float
    ssim_in: float
    ssim_out: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def band_metrics(x: np.ndarray, ref: np.ndarray, mask: BandSpec | np.ndarray) -> BandMetrics:
    """All six numbers for a batch (PSNRs averaged per image in dB)."""
    a, b = _check_pair(x, ref)
    inside, outside = mse_split(a, b, mask)
    a_in, a_out = band_split(a, mask)
    b_in, b_out = band_split(b, mask)
    return BandMetrics(
        psnr=psnr(a, b),
        psnr_in=float(np.mean([psnr_from_mse(float(m)) for m in inside])),
        psnr_out=float(np.mean([psnr_from_mse(float(m)) for m in outside])),
        ssim=ssim(a, b),
        ssim_in=ssim(a_in, b_in),
        ssim_out=ssim(a_out, b_out),
    )


__all__ = [
    "DATA_RANGE",
    "BandMetrics",
    "band_energy",
    "band_energy_ratio",
    "band_metrics",
    "band_split",
    "mse_split",
    "psnr",
    "psnr_from_mse",
    "ssim",
]
