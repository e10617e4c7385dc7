"""Band masks ``M(f) ∈ [0, 1]`` from a :class:`BandSpec` at a given image size (DESIGN.md §2).

Masks are computed on the full unshifted grid in the spec's units, symmetrised exactly
(``M = max(M, M(−f))`` on the discrete grid, which also settles the Nyquist bins where ``rfftfreq``
says +1/2 and ``fftfreq`` says −1/2), and cut to the ``rfft2`` half grid. Hard edges select exactly
the bins inside the half-open regions; ``softness > 0`` adds a raised-cosine roll-off *outside* each
region, so the stated band is always fully covered. Results are cached by (spec, shape) and returned
read-only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sagd_core.spectral.bands import Annulus, BandSpec, Box, Notch, Region, Wedge
from sagd_core.spectral.grid import R_MAX, half_grid_multiplicity

logger = logging.getLogger(__name__)


class IllPosedBandError(ValueError):
    """The mask covers DC, more than half the spectrum, or a region holds no bin at this size."""


def _coordinates(spec: BandSpec, height: int, width: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Full-grid ``(fy, fx)`` in the spec's units and the factor that maps radii to those units."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    if spec.units == "cycles/image":
        fy = fy * height
        fx = fx * width
    radial_scale = 1.0 / R_MAX if spec.radius == "normalized" else 1.0
    return fy, fx, radial_scale


def _soft(distance: np.ndarray, softness: float) -> np.ndarray:
    """1 inside (distance < 0), raised-cosine fall to 0 over ``[0, softness)``, 0 beyond."""
    inside = (distance < 0).astype(np.float64)
    if softness <= 0:
        return inside
    with np.errstate(over="ignore"):  # a subnormal softness: the quotient is inf, clipped to 1
        ramp = 0.5 * (1.0 + np.cos(np.pi * np.clip(distance / softness, 0.0, 1.0)))
    return np.where(distance < 0, 1.0, np.where(distance < softness, ramp, 0.0))


def _region_mask(
    region: Region, fy: np.ndarray, fx: np.ndarray, rscale: float, softness: float
) -> np.ndarray:
    fy, fx = np.broadcast_arrays(fy, fx)
    r = np.sqrt(fy**2 + fx**2) * rscale
    if isinstance(region, Annulus):
        # distance < 0 exactly when low ≤ r < high.
        dist = np.where((r >= region.low) & (r < region.high), -1.0, 0.0)
        if softness > 0:
            outside = np.maximum(region.low - r, r - region.high)
            dist = np.where(dist < 0, -1.0, np.maximum(outside, 0.0))
        return _soft(dist, softness)
    if isinstance(region, Notch):
        d1 = np.sqrt((fy - region.fy) ** 2 + (fx - region.fx) ** 2)
        d2 = np.sqrt((fy + region.fy) ** 2 + (fx + region.fx) ** 2)
        return _soft(np.minimum(d1, d2) - region.radius, softness)
    if isinstance(region, Wedge):
        theta = np.degrees(np.arctan2(fy, fx))
        delta = np.abs((theta - region.angle_deg + 90.0) % 180.0 - 90.0)  # line: mod 180°
        ang_excess = np.radians(np.clip(delta - region.tolerance_deg, -90.0, 90.0))
        ang_dist = r * np.sin(ang_excess)
        inside = (delta <= region.tolerance_deg) & (r >= region.low) & (r < region.high)
        if region.low > 0:
            inside &= r > 0
        dist = np.where(inside, -1.0, 0.0)
        if softness > 0:
            outside = np.maximum.reduce(
                [region.low - r, r - region.high, ang_dist, np.zeros_like(r)]
            )
            dist = np.where(inside, -1.0, outside)
        return _soft(dist, softness)
    if isinstance(region, Box):
        (ylo, yhi), (xlo, xhi) = region.fy, region.fx

        def box(y: np.ndarray, x: np.ndarray) -> np.ndarray:
            inside = (y >= ylo) & (y < yhi) & (x >= xlo) & (x < xhi)
            outside = np.maximum.reduce([ylo - y, y - yhi, xlo - x, x - xhi, np.zeros_like(y)])
            return _soft(np.where(inside, -1.0, outside), softness)

        return np.maximum(box(fy, fx), box(-fy, -fx))
    raise TypeError(f"unknown region {region!r}")  # pragma: no cover - pydantic prevents it


def _conjugate(full: np.ndarray) -> np.ndarray:
    """``M(−f)`` on the discrete grid: index ``k → (−k) mod N`` on both axes."""
    return np.roll(np.flip(full, axis=(0, 1)), shift=(1, 1), axis=(0, 1))


@lru_cache(maxsize=512)
def _mask_cached(key: str, height: int, width: int) -> np.ndarray:
    spec = BandSpec.model_validate_json(key)
    fy, fx, rscale = _coordinates(spec, height, width)
    full = np.zeros((height, width))
    for region in spec.regions:
        full = np.maximum(full, _region_mask(region, fy, fx, rscale, spec.softness))
    full = np.maximum(full, _conjugate(full))
    full.setflags(write=False)
    return full


def band_mask(spec: BandSpec, height: int, width: int, *, half: bool = True) -> np.ndarray:
    """The mask of ``spec`` at ``height × width``: float64, read-only, ``(H, W//2+1)`` when
    ``half`` (the ``rfft2`` grid) else ``(H, W)``. Cached by (spec, shape)."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be at least 1×1, got {height}×{width}")
    full = _mask_cached(spec.cache_key(), height, width)
    return full[:, : width // 2 + 1] if half else full


@dataclass(frozen=True)
class MaskReport:
    """How much of the spectrum a spec covers at one size."""

    height: int
    width: int
    fraction: float  # energy-weighted share of the full grid, Σ M / (H·W)
    covers_dc: bool
    empty_regions: tuple[int, ...]  # indices of regions that hold no bin at this size

    @property
    def problems(self) -> list[str]:
        out = []
        if self.covers_dc:
            out.append("the mask covers DC (the image mean): the problem is ill-posed")
        if self.fraction > 0.5:
            out.append(f"the mask covers {self.fraction:.0%} of the spectrum (more than half)")
        for i in self.empty_regions:
            out.append(f"regions[{i}] holds no frequency bin at {self.height}×{self.width}")
        return out


def mask_report(spec: BandSpec, height: int, width: int) -> MaskReport:
    """What ``spec`` covers at ``height × width``. Cached by (spec, shape) like the mask: the API
    checks every upload against its spec, usually the same few specs and sizes."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be at least 1×1, got {height}×{width}")
    return _report_cached(spec.cache_key(), height, width)


@lru_cache(maxsize=512)
def _report_cached(key: str, height: int, width: int) -> MaskReport:
    spec = BandSpec.model_validate_json(key)
    full = _mask_cached(key, height, width)
    fy, fx, rscale = _coordinates(spec, height, width)
    empty = tuple(
        i
        for i, region in enumerate(spec.regions)
        if not np.any(_region_mask(region, fy, fx, rscale, 0.0) > 0)
    )
    return MaskReport(
        height=height,
        width=width,
        fraction=float(full.mean()),
        covers_dc=bool(full[0, 0] > 0),
        empty_regions=empty,
    )


def check_spec_for_shape(spec: BandSpec, height: int, width: int) -> MaskReport:
    """Refuse (or, with ``allow_ill_posed``, log a warning for) an ill-posed spec at this size.

    Empty regions are always refused: a band that holds no frequency bin at this size is a
    mistake in units or ranges, never what the user meant.
    """
    report = mask_report(spec, height, width)
    if report.empty_regions:
        raise IllPosedBandError("; ".join(p for p in report.problems if "holds no" in p))
    problems = report.problems
    if problems:
        if not spec.allow_ill_posed:
            raise IllPosedBandError(
                "; ".join(problems) + " (set allow_ill_posed to proceed anyway)"
            )
        logger.warning("ill-posed band spec accepted: %s", "; ".join(problems))
    return report


def masked_energy_fraction(power_half: np.ndarray, mask_half: np.ndarray, width: int) -> float:
    """Share of the total energy (half-grid power, Parseval-weighted) that lies under a mask."""
    mult = half_grid_multiplicity(power_half.shape[-2], width)
    total = float((power_half * mult).sum())
    if total == 0:
        return 0.0
    return float((power_half * mask_half * mult).sum()) / total


__all__ = [
    "IllPosedBandError",
    "MaskReport",
    "band_mask",
    "check_spec_for_shape",
    "mask_report",
    "masked_energy_fraction",
]
