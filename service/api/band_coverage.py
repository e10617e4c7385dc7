"""What a band spec covers at an image size, computed by the API at a bounded cost.

The library's ``mask_report`` keeps the full float64 mask of every (spec, size) it has seen (128
MiB at 4096²); here the grid is evaluated a strip of rows at a time, so memory stays at a few MiB.
Time is bounded too: the check evaluates every region at every bin twice (``M(f)`` and
``M(−f)``), and a spec of 64 wide regions on a 4096² image was over two billion evaluations,
about a minute of the API's CPU for an upload of a few kilobytes (session 8, measured: 28 s at
2048² on the loaded 2-core machine; 2.9 s with this bound). So:

- while ``regions × 2 × H × W`` stays within :data:`EXACT_BUDGET` the check is exact: what the
  library says, to the bit;
- beyond it, the covered fraction and "covers DC" are measured on every ``stride``-th bin of both
  axes (DC is always among them); each region that holds no bin there is looked for at full
  resolution, exactly, inside its bounding box (notches and boxes) or by a scan that stops at its
  first bin (annuli and wedges), at most :data:`EXACT_BUDGET` evaluations in all; a region still
  undecided then counts as holding a bin. The worker runs the library's exact check before any
  work, so a spec this check lets through by approximation fails its job with the library's
  words; :func:`fraction_is_decided` says where the estimate is too close to the one-half limit
  to refuse on it.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np

from sagd_core.spectral.bands import BandSpec, Box, Notch, Region
from sagd_core.spectral.masks import MaskReport, _coordinates, _region_mask

logger = logging.getLogger(__name__)

#: Rows of the frequency grid evaluated at a time (2 MiB a row-strip at 4096 columns).
STRIP_ROWS = 64
#: The most mask evaluations one check spends on the fraction, and again on finding bins.
EXACT_BUDGET = 1 << 25
#: The most mask evaluations (:func:`band_check_cost`) the API spends on the event loop; a
#: heavier check (a small, compressible file of a large image, or many regions) runs on the
#: thread pool, so the loop stays free for other requests (about 0.1 s of CPU at this cost).
ON_LOOP_BAND_CHECK = 1 << 21
#: Half-width of the band around the one-half limit where an estimated fraction decides nothing.
FRACTION_SLACK = 0.02


@dataclass(frozen=True)
class Coverage:
    """The library's report plus how it was measured: ``stride`` 1 is exact."""

    report: MaskReport
    stride: int

    @property
    def exact(self) -> bool:
        return self.stride == 1


def band_check_cost(spec: BandSpec, height: int, width: int) -> int:
    """Mask evaluations of an exact check of ``spec`` at ``height × width`` (each region at
    every bin, twice): what :func:`coverage` spends, up to :data:`EXACT_BUDGET` twice over."""
    return _evaluations(len(spec.regions), height, width)


def _evaluations(regions: int, height: int, width: int) -> int:
    return 2 * regions * height * width


def stride_for(regions: int, height: int, width: int) -> int:
    """The sampling step of both axes that keeps ``regions × 2 × H × W / stride²`` within
    :data:`EXACT_BUDGET` (1: exact)."""
    cost = _evaluations(regions, height, width)
    return 1 if cost <= EXACT_BUDGET else math.ceil(math.sqrt(cost / EXACT_BUDGET))


def fraction_is_decided(coverage: Coverage) -> bool:
    """Whether the covered fraction may be judged against one half: always when exact, else only
    outside :data:`FRACTION_SLACK` of it."""
    return coverage.exact or abs(coverage.report.fraction - 0.5) > FRACTION_SLACK


def coverage(spec: BandSpec, height: int, width: int) -> Coverage:
    """What ``spec`` covers at ``height × width`` (see the module docstring). Cached by (spec,
    size)."""
    return _coverage(spec.cache_key(), height, width)


@functools.lru_cache(maxsize=256)
def _coverage(key: str, height: int, width: int) -> Coverage:
    spec = BandSpec.model_validate_json(key)
    fy, fx, rscale = _coordinates(spec, height, width)  # (H, 1) and (1, W)
    stride = stride_for(len(spec.regions), height, width)
    rows, cols = np.arange(0, height, stride), np.arange(0, width, stride)
    # M(-f) on the discrete grid is M at index (-k) mod N on both axes (masks._conjugate).
    fy_s, fy_conj = fy[rows], fy[(-rows) % height]
    fx_s, fx_conj = fx[:, cols], fx[:, (-cols) % width]
    soft = spec.softness
    total, covers_dc = 0.0, False
    holds_a_bin = [False] * len(spec.regions)
    for top in range(0, rows.size, STRIP_ROWS):
        strip = slice(top, min(rows.size, top + STRIP_ROWS))
        full = np.zeros((strip.stop - strip.start, cols.size))
        for index, region in enumerate(spec.regions):
            mask = _region_mask(region, fy_s[strip], fx_s, rscale, soft)
            full = np.maximum(full, mask)
            full = np.maximum(full, _region_mask(region, fy_conj[strip], fx_conj, rscale, soft))
            if not holds_a_bin[index]:
                hard = mask if soft == 0 else _region_mask(region, fy_s[strip], fx_s, rscale, 0.0)
                holds_a_bin[index] = bool(np.any(hard > 0))
        total += float(full.sum())
        covers_dc = covers_dc or (top == 0 and bool(full[0, 0] > 0))
    if stride > 1:
        budget = [EXACT_BUDGET]
        for index, region in enumerate(spec.regions):
            if not holds_a_bin[index]:
                holds_a_bin[index] = _holds_a_bin(region, fy, fx, rscale, budget)
        logger.info(
            "band check of %d region(s) at %dx%d sampled every %d bins (fraction %.3f)",
            len(spec.regions),
            width,
            height,
            stride,
            total / (rows.size * cols.size),
        )
    report = MaskReport(
        height=height,
        width=width,
        fraction=total / (rows.size * cols.size),
        covers_dc=covers_dc,
        empty_regions=tuple(i for i, held in enumerate(holds_a_bin) if not held),
    )
    return Coverage(report=report, stride=stride)


def _near(values: np.ndarray, centre: float, reach: float) -> np.ndarray:
    """Indices of ``values`` within ``reach`` of ``±centre`` (a notch or box is symmetric)."""
    return np.flatnonzero((np.abs(values - centre) <= reach) | (np.abs(values + centre) <= reach))


def _holds_a_bin(
    region: Region, fy: np.ndarray, fx: np.ndarray, rscale: float, budget: list[int]
) -> bool:
    """Whether ``region`` holds a bin of the full grid (hard mask, as the library asks), found
    within what is left of ``budget`` (decremented); undecided counts as holding one."""
    fy1, fx1 = fy[:, 0], fx[0]
    if isinstance(region, Notch):
        rows = _near(fy1, region.fy, region.radius)
        cols = _near(fx1, region.fx, region.radius)
    elif isinstance(region, Box):
        (ylo, yhi), (xlo, xhi) = region.fy, region.fx
        rows = _near(fy1, (ylo + yhi) / 2, (yhi - ylo) / 2)
        cols = _near(fx1, (xlo + xhi) / 2, (xhi - xlo) / 2)
    else:
        rows, cols = np.arange(fy1.size), np.arange(fx1.size)
    for top in range(0, rows.size, STRIP_ROWS):
        strip = rows[top : top + STRIP_ROWS]
        if budget[0] < strip.size * cols.size:
            return True  # undecided: the worker's exact check decides
        budget[0] -= strip.size * cols.size
        if cols.size and np.any(_region_mask(region, fy[strip], fx[:, cols], rscale, 0.0) > 0):
            return True
    return False


__all__ = [
    "EXACT_BUDGET",
    "FRACTION_SLACK",
    "STRIP_ROWS",
    "Coverage",
    "coverage",
    "fraction_is_decided",
    "stride_for",
]
