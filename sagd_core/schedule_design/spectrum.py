"""Per-frequency data variance λ(f) for schedule design (DESIGN.md §5).

Model: stationary Gaussian data, diagonal in the orthonormal Fourier basis, so each frequency and
channel is an independent scalar problem with variance ``λ = E|F x_0|²`` (per-pixel dataset mean
removed). We store λ on the ``rfft2`` half grid ``(C, H, W//2+1)`` (DESIGN.md §1) and carry the
bookkeeping explicitly: a half-grid bin stands for 1 or 2 full-grid bins
(:func:`~sagd_core.spectral.grid.half_grid_multiplicity`), and every sum over "all frequencies" is
a multiplicity-weighted sum over the half grid. Both grids give the same per-frequency variance
(``|X(-f)| = |X(f)|`` for real images); with multiplicities the sums equal pixel-domain sums.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sagd_core.schedule_design.documents import DocumentKind
from sagd_core.spectral.grid import full_from_half, half_grid_multiplicity, radius_grid

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

SPECTRUM_FORMAT = "sagd.spectrum"
SPECTRUM_VERSION = 1


class SpectrumError(ValueError):
    """Bad input for spectrum estimation or a malformed saved spectrum."""


_DOCUMENT = DocumentKind(SPECTRUM_FORMAT, SPECTRUM_VERSION, "spectrum", SpectrumError)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def _radial_bins(height: int, width: int, n_bins: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of every half-grid bin and the bin centres (cycles/pixel, absolute radius).

    Default: bins of width ``1/max(H, W)`` centred on integer radii in cycles/image (DC alone in
    bin 0). With ``n_bins``: equal-width bins over ``[0, r_max]`` of the grid.
    """
    r = radius_grid(height, width, half=True)
    if n_bins is None:
        size = max(height, width)
        idx = np.rint(r * size).astype(np.int64)
        centres = np.arange(int(idx.max()) + 1) / size
        return idx, centres
    if n_bins < 1:
        raise SpectrumError(f"n_radial_bins must be at least 1, got {n_bins}")
    r_max = float(r.max()) if r.max() > 0 else 1.0
    width_bin = r_max / n_bins
    idx = np.minimum((r / width_bin).astype(np.int64), n_bins - 1)
    return idx, (np.arange(n_bins, dtype=np.float64) + 0.5) * width_bin


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Per-channel, per-frequency variance ``lam`` on the half grid ``(C, H, W//2+1)``.

    ``num_samples`` is the number of images it was estimated from (0 for synthetic spectra);
    ``radial`` says whether ``lam`` was replaced by its radial average. ``mean_power`` (optional,
    same shape) is ``|F x̄|²``, the power of the dataset's mean image: DESIGN.md §5 models zero-mean
    data, but a sampler started from a zero-mean prior at ``ᾱ_N`` misses ``√ᾱ_N x̄``, an error
    the schedule losses count when this is present (:func:`~.transfer.mean_error_gain`).
    """

    lam: np.ndarray
    height: int
    width: int
    num_samples: int = 0
    radial: bool = False
    mean_power: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise SpectrumError(f"image size must be at least 1×1, got {self.height}×{self.width}")
        lam = np.asarray(self.lam, dtype=np.float64)
        expected = (self.height, self.width // 2 + 1)
        if lam.ndim != 3 or lam.shape[1:] != expected or lam.shape[0] < 1:
            raise SpectrumError(
                f"lam must have shape (C, {expected[0]}, {expected[1]}) for a "
                f"{self.height}×{self.width} image, got {lam.shape}"
            )
        if not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise SpectrumError("lam must be finite and non-negative")
        if self.num_samples < 0:
            raise SpectrumError(f"num_samples must be >= 0, got {self.num_samples}")
        object.__setattr__(self, "lam", _readonly(lam))
        if self.mean_power is not None:
            mp = np.asarray(self.mean_power, dtype=np.float64)
            if mp.shape != lam.shape:
                raise SpectrumError(f"mean_power must have shape {lam.shape}, got {mp.shape}")
            if not np.all(np.isfinite(mp)) or np.any(mp < 0):
                raise SpectrumError("mean_power must be finite and non-negative")
            object.__setattr__(self, "mean_power", _readonly(mp))

    @property
    def channels(self) -> int:
        return int(self.lam.shape[0])

    @property
    def multiplicity(self) -> np.ndarray:
        """``(H, W//2+1)``: how many full-grid bins each half-grid bin stands for."""
        return half_grid_multiplicity(self.height, self.width)

    def full_grid(self) -> np.ndarray:
        """λ on the full unshifted ``(C, H, W)`` grid."""
        return full_from_half(self.lam, self.width)

    def flattened(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lam, weights)`` as 1-D arrays over channels × half grid; ``Σ weights·f(lam)`` is the
        full-grid sum of ``f(λ)`` over all frequencies and channels."""
        weights = np.broadcast_to(self.multiplicity, self.lam.shape)
        return self.lam.reshape(-1).copy(), weights.reshape(-1).copy()

    def pixel_variance(self) -> np.ndarray:
        """Per-channel variance per pixel, ``Σ_f λ(f) / (H W)`` (Parseval)."""
        return np.sum(self.lam * self.multiplicity, axis=(1, 2)) / (self.height * self.width)

    def radial_profile(self, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(centres, profile)``: mean of λ over radial bins, ``profile`` of shape (C, n_bins).

        Means are full-grid means (multiplicity-weighted); empty bins are NaN.
        """
        idx, centres = _radial_bins(self.height, self.width, n_bins)
        mult = self.multiplicity.reshape(-1)
        flat_idx = idx.reshape(-1)
        counts = np.bincount(flat_idx, weights=mult, minlength=centres.size)
        profile = np.full((self.channels, centres.size), np.nan)
        for c in range(self.channels):
            sums = np.bincount(
                flat_idx, weights=mult * self.lam[c].reshape(-1), minlength=centres.size
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                profile[c] = np.where(counts > 0, sums / np.maximum(counts, 1e-300), np.nan)
        return centres, profile

    def radially_averaged(self, n_bins: int | None = None) -> Spectrum:
        """λ replaced by its radial-bin mean (smooths sampling noise; assumes isotropy)."""
        idx, _ = _radial_bins(self.height, self.width, n_bins)
        _, profile = self.radial_profile(n_bins)
        return Spectrum(
            profile[:, idx],
            self.height,
            self.width,
            self.num_samples,
            radial=True,
            mean_power=self.mean_power,
        )

    def without_mean(self) -> Spectrum:
        """The same λ with no mean image (the pure zero-mean model of DESIGN.md §5)."""
        return Spectrum(self.lam, self.height, self.width, self.num_samples, self.radial)

    def resized(self, height: int, width: int) -> Spectrum:
        """λ on an ``height × width`` grid, interpolated from the radial profile (cycles/pixel).

        For a stationary process λ on the orthonormal DFT grid samples the power spectral density,
        which does not depend on the image size, so the profile is interpolated (in log λ when
        positive) at the new radii. The result is isotropic (``radial=True``). Of the mean image
        only its average level is kept (DC power scaled by the pixel count ratio): a larger image
        of the same content has no fixed layout. The same size returns ``self``.
        """
        if (height, width) == (self.height, self.width):
            return self
        if height < 1 or width < 1:
            raise SpectrumError(f"image size must be at least 1×1, got {height}×{width}")
        centres, profile = self.radial_profile()
        r = radius_grid(height, width, half=True)
        lam = np.empty((self.channels, height, width // 2 + 1))
        for c in range(self.channels):
            ok = np.isfinite(profile[c])
            xs, ys = centres[ok], profile[c][ok]
            if np.all(ys > 0):
                lam[c] = np.exp(np.interp(r, xs, np.log(ys)))
            else:
                lam[c] = np.interp(r, xs, ys)
        mean_power = None
        if self.mean_power is not None:
            mean_power = np.zeros_like(lam)
            scale = (height * width) / (self.height * self.width)
            mean_power[:, 0, 0] = self.mean_power[:, 0, 0] * scale
        return Spectrum(lam, height, width, self.num_samples, radial=True, mean_power=mean_power)

    def whiten(self, w: np.ndarray) -> Spectrum:
        """Eigenvalues in SAGD-whitened coordinates, ``λ / w²`` (DESIGN.md §5).

        ``w`` is the noise weight on the half grid ``(H, W//2+1)`` (or per channel
        ``(C, H, W//2+1)``). Where ``w == 0`` the result is 0 (pseudo-inverse): those frequencies
        carry no noise, and the losses exclude them (they mask ``λ = 0``).
        """
        w = np.asarray(w, dtype=np.float64)
        half = (self.height, self.width // 2 + 1)
        if w.shape not in (half, (self.channels, *half)):
            raise SpectrumError(
                f"noise weights must have shape {half} or {(self.channels, *half)}, got {w.shape}"
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise SpectrumError("noise weights must be finite and non-negative")
        w2 = np.broadcast_to(w**2, self.lam.shape)
        lam = np.divide(self.lam, w2, out=np.zeros_like(self.lam), where=w2 > 0)
        mean_power = None
        if self.mean_power is not None:
            mean_power = np.divide(self.mean_power, w2, out=np.zeros_like(self.lam), where=w2 > 0)
        return Spectrum(lam, self.height, self.width, self.num_samples, self.radial, mean_power)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SPECTRUM_FORMAT,
            "version": SPECTRUM_VERSION,
            "height": self.height,
            "width": self.width,
            "num_samples": self.num_samples,
            "radial": self.radial,
            "lam": self.lam.tolist(),
            "mean_power": None if self.mean_power is None else self.mean_power.tolist(),
        }

    def to_json(self) -> str:
        """JSON text (floats round-trip exactly), to save beside a model."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> Spectrum:
        data = _DOCUMENT.check(data)
        try:
            height, width = int(data["height"]), int(data["width"])
            num_samples = int(data["num_samples"])
            radial = data["radial"]
            lam = np.asarray(data["lam"], dtype=np.float64)
            raw_mean = data.get("mean_power")
            mean_power = None if raw_mean is None else np.asarray(raw_mean, dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise SpectrumError(f"malformed spectrum document: {exc}") from exc
        if not isinstance(radial, bool):
            raise SpectrumError("'radial' must be a boolean")
        return cls(lam, height, width, num_samples, radial, mean_power)

    @classmethod
    def from_json(cls, text: str | bytes) -> Spectrum:
        return cls.from_dict(_DOCUMENT.parse(text))


def _as_numpy_images(images: np.ndarray | torch.Tensor) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        import torch  # only to accept dataset tensors

        if not isinstance(images, torch.Tensor):
            raise SpectrumError(
                f"images must be a numpy array or torch tensor, got {type(images).__name__}"
            )
        images = images.detach().to("cpu", torch.float64).numpy()
    if images.ndim != 4:
        raise SpectrumError(f"images must have shape (N, C, H, W), got {images.shape}")
    if images.shape[0] < 2:
        raise SpectrumError("need at least 2 images to estimate a variance")
    if min(images.shape[1:]) < 1:
        raise SpectrumError(f"empty image dimensions: {images.shape}")
    if not np.issubdtype(images.dtype, np.number) or np.iscomplexobj(images):
        raise SpectrumError(f"images must be real numbers, got dtype {images.dtype}")
    return images


def estimate_spectrum(
    images: np.ndarray | torch.Tensor,
    *,
    radial: bool = False,
    n_radial_bins: int | None = None,
    batch_size: int = 256,
) -> Spectrum:
    """Unbiased per-frequency variance ``λ = E|F(x − x̄)|²`` of a dataset (DESIGN.md §5).

    ``images`` is ``(N, C, H, W)``; ``x̄`` is the per-pixel dataset mean; ``F`` the orthonormal
    ``rfft2``. With ``radial=True`` λ is replaced by its radial average (see
    :meth:`Spectrum.radially_averaged` for the bins). Processed in batches of ``batch_size``.
    """
    x = _as_numpy_images(images)
    if batch_size < 1:
        raise SpectrumError(f"batch_size must be at least 1, got {batch_size}")
    n, c, h, w = x.shape
    mean = np.zeros((c, h, w))
    for start in range(0, n, batch_size):
        chunk = np.asarray(x[start : start + batch_size], dtype=np.float64)
        if not np.all(np.isfinite(chunk)):
            raise SpectrumError("images contain NaN or infinite values")
        mean += chunk.sum(axis=0)
    mean /= n
    power = np.zeros((c, h, w // 2 + 1))
    for start in range(0, n, batch_size):
        chunk = np.asarray(x[start : start + batch_size], dtype=np.float64) - mean
        spec = np.fft.rfft2(chunk, norm="ortho")
        power += np.sum(spec.real**2 + spec.imag**2, axis=0)
    lam = power / (n - 1)
    mean_spec = np.fft.rfft2(mean, norm="ortho")
    mean_power = mean_spec.real**2 + mean_spec.imag**2
    logger.debug("estimated spectrum of %d images, shape %s", n, lam.shape)
    spectrum = Spectrum(lam, h, w, num_samples=n, mean_power=mean_power)
    return spectrum.radially_averaged(n_radial_bins) if radial else spectrum


def gaussian_spectrum_power_law(
    height: int,
    width: int,
    exponent: float = -2.0,
    r_min: float | None = None,
    *,
    channels: int = 1,
    pixel_variance: float | None = None,
) -> Spectrum:
    """Synthetic spectrum ``λ = max(r, r_min)^exponent`` (``r`` in cycles/pixel).

    ``r_min`` defaults to ``1/max(H, W)`` (the smallest non-zero radius; it sets DC). With
    ``pixel_variance`` the spectrum is scaled so each channel's per-pixel variance equals it.
    """
    if r_min is None:
        r_min = 1.0 / max(height, width)
    if not (math.isfinite(r_min) and r_min > 0) or not math.isfinite(exponent):
        raise SpectrumError(f"need finite exponent and r_min > 0, got {exponent}, {r_min}")
    if channels < 1:
        raise SpectrumError(f"channels must be at least 1, got {channels}")
    r = np.maximum(radius_grid(height, width, half=True), r_min)
    lam = np.broadcast_to(r**exponent, (channels, *r.shape))
    spectrum = Spectrum(lam, height, width)
    if pixel_variance is not None:
        if not (math.isfinite(pixel_variance) and pixel_variance > 0):
            raise SpectrumError(f"pixel_variance must be positive, got {pixel_variance}")
        scale = pixel_variance / spectrum.pixel_variance()[:, None, None]
        spectrum = Spectrum(lam * scale, height, width)
    return spectrum


def sample_gaussian_images(spectrum: Spectrum, num: int, *, rng: np.random.Generator) -> np.ndarray:
    """Draw ``(num, C, H, W)`` zero-mean stationary Gaussian images with covariance eigenvalues λ.

    Exact: white noise filtered by ``√λ`` through the orthonormal ``rfft2`` (DESIGN.md §3).
    """
    if num < 1:
        raise SpectrumError(f"num must be at least 1, got {num}")
    xi = rng.standard_normal((num, spectrum.channels, spectrum.height, spectrum.width))
    spec = np.fft.rfft2(xi, norm="ortho") * np.sqrt(spectrum.lam)
    return np.fft.irfft2(spec, s=(spectrum.height, spectrum.width), norm="ortho")
