"""The JSON-able restoration report: what was done to which band, and how well it held.

Every report states the method, the bands (with what happened to each and why), the out-of-band
relative residual over the strictly trusted bins (DESIGN.md §4.1), per-band energies before and
after (mean square per pixel and channel, model range ``[-1, 1]``) with the hard notch's beside
them (the floor every method is compared with), timings and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.energy import energy_of, residual_from_power
from sagd_core.spectral.fft import half_power
from sagd_core.spectral.masks import MaskReport, band_mask


@dataclass
class BandAction:
    """What a method did to the band: ``omitted`` (zeroed), ``filled`` (estimated by a model)
    or ``attenuated`` (zeroed with a smooth roll-off around it), and why."""

    action: str
    reason: str


@dataclass
class MethodOutcome:
    """A method's samples (``(K, C, H, W)`` float64 numpy, model range) plus what it wants
    reported."""

    samples: np.ndarray
    band: BandAction
    trusted: str  # "returned exactly" | "denoised" | "attenuated near the band" | ...
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    stochastic: bool = False
    #: One action per region of the spec, when the method treats regions differently.
    regions: list[BandAction] | None = None


def region_specs(spec: BandSpec) -> list[BandSpec]:
    """One spec per region, keeping units, radius convention and softness."""
    return [spec.model_copy(update={"regions": [r]}) for r in spec.regions]


def band_energies(spec: BandSpec, before: np.ndarray, after: np.ndarray) -> list[dict[str, Any]]:
    """Per region: energy of the input and of the output under that region's mask."""
    return _band_energies(spec, half_power(before), half_power(after), before.shape[-1])


def _band_energies(
    spec: BandSpec, before: np.ndarray, after: np.ndarray, width: int
) -> list[dict[str, Any]]:
    """:func:`band_energies` from the two :func:`half_power` spectra."""
    h = before.shape[-2]
    out = []
    for i, sub in enumerate(region_specs(spec)):
        mask = band_mask(sub, h, width)
        out.append(
            {
                "index": i,
                "region": sub.regions[0].model_dump(mode="json"),
                "bins": int(np.count_nonzero(band_mask(sub, h, width, half=False))),
                "energy_before": energy_of(before, mask, h, width),
                "energy_after": energy_of(after, mask, h, width),
            }
        )
    return out


def build_report(
    *,
    method: str,
    spec: BandSpec,
    mask_report: MaskReport,
    y: np.ndarray,
    result: np.ndarray,
    outcome: MethodOutcome,
    request: dict[str, Any],
    channels: int,
    device: str,
    timings: dict[str, float],
    samples: int,
    uncertainty_mean: float | None,
    clipped_fraction: float,
    tiles: dict[str, Any] | None,
) -> dict[str, Any]:
    """Assemble the report; ``y`` and ``result`` are ``(C, H, W)`` in model range."""
    h, w = y.shape[-2:]
    mask = band_mask(spec, h, w)
    trusted_bins = (mask == 0).astype(np.float64)
    # Each spectrum once: every energy below is a weighted sum of one of these three.
    power_y, power_result = half_power(y), half_power(result)
    power_diff = half_power(result - y)
    bands = _band_energies(spec, power_y, power_result, w)
    actions = outcome.regions or [outcome.band] * len(bands)
    for entry, action in zip(bands, actions, strict=True):
        entry["action"] = action.action
        entry["reason"] = action.reason
    return {
        "method": method,
        "request": request,
        "image": {"height": int(h), "width": int(w), "channels": channels},
        "band": spec.model_dump(mode="json"),
        "mask_fraction": mask_report.fraction,
        "bands": bands,
        "band_energy_total": {
            "before": energy_of(power_y, mask, h, w),
            "after": energy_of(power_result, mask, h, w),
            # the floor's: what a hard notch (spectrum × (1 − M)) leaves under the mask
            "notch": energy_of(power_y * (1.0 - mask) ** 2, mask, h, w),
        },
        "trusted": outcome.trusted,
        "out_of_band_residual": residual_from_power(power_diff, power_y, trusted_bins, w),
        "samples": samples,
        "stochastic": outcome.stochastic,
        "uncertainty_mean_std": uncertainty_mean,
        "clipped_fraction": clipped_fraction,
        "tiles": tiles,
        "details": outcome.details,
        "device": device,
        "timings": timings,
        "warnings": list(outcome.warnings),
    }


__all__ = ["BandAction", "MethodOutcome", "band_energies", "build_report", "region_specs"]
