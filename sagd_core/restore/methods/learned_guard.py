"""The per-image guard of a learned fill (the ``sagd`` method, DESIGN.md §7.5): the classical
tier's result, decimated so that its band holds clean content, is a probe on which the learned
path and the classical tier both restore the band; per region the learned estimate is kept only
where its error is smaller, else the classical one replaces it, with a warning naming both
errors. Where the model's fill calibration is not valid at this size, the fill's gain is fitted
on the probe instead."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from sagd_core.restore.fourier import apply_gain, merge_bands
from sagd_core.restore.methods.chains import mask_on
from sagd_core.restore.methods.classical import run_classical
from sagd_core.restore.methods.classical.guard import (
    ScaledProbe,
    probe_region_errors,
    scaled_probe,
)
from sagd_core.restore.methods.classical.wiener import estimate_noise
from sagd_core.restore.progress import Progress
from sagd_core.restore.report import BandAction, MethodOutcome, region_specs
from sagd_core.spectral.grid import half_grid_multiplicity
from sagd_core.spectral.masks import band_mask

if TYPE_CHECKING:
    from sagd_core.restore.request import RestoreRequest


@dataclass
class GuardCheck:
    """The per-image check of a learned fill against the classical tier (its fallback): the
    classical outcome on the image, the probe (None when none fits), both candidates' errors
    per region on it, the gain calibrated on it (when the stored one is not valid here), and
    which regions kept the learned estimate."""

    fallback: MethodOutcome
    probe: ScaledProbe | None
    learned_errors: list[float] = field(default_factory=list)
    fallback_errors: list[float] = field(default_factory=list)
    spot_gain: float | None = None
    kept: list[bool] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def describe(self, calibration: str) -> dict[str, object]:
        regions = [
            {
                "index": i,
                "learned_error": self.learned_errors[i] if self.learned_errors else None,
                "fallback_error": self.fallback_errors[i] if self.fallback_errors else None,
                "chosen": "learned" if kept else "classical",
            }
            for i, kept in enumerate(self.kept)
        ]
        return {
            "fallback": "classical tier",
            "probe": None if self.probe is None else self.probe.describe(),
            "calibration": calibration,
            "gain_on_the_spot": self.spot_gain,
            "regions": regions,
        }


def region_levels(y: np.ndarray, request: RestoreRequest) -> list[list[float]]:
    """Per region of the band, the excess power per bin and channel of ``y`` ``(C, H, W)`` over
    the trusted spectrum's trend (the classical tier's noise level, :mod:`classical.wiener`)."""
    h, w = y.shape[-2:]
    subs = region_specs(request.band)
    regions = {i: band_mask(sub, h, w) for i, sub in enumerate(subs)}
    power = np.abs(np.fft.rfft2(y, norm="ortho")) ** 2
    band = band_mask(request.band, h, w)
    _, estimate = estimate_noise(power, regions, band, request.input_noise_std**2, w)
    return [estimate.levels[i] for i in range(len(subs))]


def fit_spot_gain(clean: np.ndarray, fill: torch.Tensor, mask: torch.Tensor) -> float:
    """The least-squares gain of ``fill`` ``(C, h, w)`` towards the probe's hidden ``clean``
    content in the band, clipped to [0, 1] (the fill calibration, on the image itself)."""
    h, w = clean.shape[-2:]
    weight = (mask > 0).cpu().numpy() * half_grid_multiplicity(h, w)
    spec_c = np.fft.rfft2(clean, norm="ortho")
    spec_f = np.fft.rfft2(fill.cpu().numpy(), norm="ortho")
    num = float(((spec_c.conj() * spec_f).real * weight).sum())
    den = float(((spec_f.real**2 + spec_f.imag**2) * weight).sum())
    return float(np.clip(num / den, 0.0, 1.0)) if den > 0 else 0.0


def probe_check(
    y: torch.Tensor,
    request: RestoreRequest,
    run: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    *,
    spot_gain: bool,
    gain: float,
) -> GuardCheck:
    """Run the classical tier on ``y``, build the probe from its result
    (:func:`~sagd_core.restore.methods.classical.guard.scaled_probe`) and measure both
    candidates on it; ``spot_gain``: fit the fill's gain on the probe instead of ``gain``."""
    image = y[0].cpu().numpy()
    subs = region_specs(request.band)
    fallback = run_classical(image[None], request, Progress(len(subs) + 1, None))
    levels = region_levels(image, request)
    probe = scaled_probe(fallback.samples[0], request.band, subs, levels, request.input_noise_std)
    check = GuardCheck(fallback=fallback, probe=probe)
    if probe is None:
        return check
    x = torch.as_tensor(probe.observed[None], dtype=torch.float64, device=y.device)
    z, estimate = run(x)
    mask = mask_on(request.band, x.shape[-2], x.shape[-1], y.device)
    if spot_gain:
        gain = check.spot_gain = fit_spot_gain(probe.clean, estimate.mean(0), mask)
    learned = merge_bands(z, gain * estimate, mask).mean(0).cpu().numpy()
    classical = run_classical(probe.observed[None], request, Progress(len(subs) + 1, None))
    check.learned_errors = probe_region_errors(probe, learned)
    check.fallback_errors = probe_region_errors(probe, classical.samples[0])
    return check


def apply_check(
    check: GuardCheck,
    samples: torch.Tensor,
    request: RestoreRequest,
    how: str,
    calibrated: bool,
    calibration_note: str,
    one_call: bool,
) -> tuple[torch.Tensor, list[BandAction]]:
    """Keep the learned estimate in the regions where it won on the probe, the classical tier's
    elsewhere (and everywhere when no probe fits and the model is not calibrated at this size);
    the regions' actions, and the warnings in ``check.warnings``."""
    h, w = samples.shape[-2:]
    subs = region_specs(request.band)
    label = "one-call read" if one_call else "fill"
    fallback_actions = check.fallback.regions or [check.fallback.band] * len(subs)
    probed = check.probe is not None
    check.kept = (
        [le < fe for le, fe in zip(check.learned_errors, check.fallback_errors, strict=True)]
        if probed
        else [calibrated] * len(subs)
    )
    if not probed and calibrated:
        check.warnings.append(
            f"no probe band fits this band at {h}×{w}: the learned {label} was not checked on "
            f"this image (its calibration at this size is trusted)"
        )
    elif not probed:
        check.warnings.append(
            f"{calibration_note}, and no probe band fits this band at {h}×{w}: the learned "
            f"{label} is not used; the classical tier's estimate is returned"
        )
    elif not calibrated:
        check.warnings.append(
            f"{calibration_note}: "
            + (
                "its stored gain is not trusted here; the gain was calibrated on the spot on a "
                f"probe band of this image: {check.spot_gain:.3g}"
                if check.spot_gain is not None
                else f"the learned {label} is checked on a probe band of this image instead"
            )
        )
    fallback = torch.as_tensor(
        check.fallback.samples[0], dtype=samples.dtype, device=samples.device
    )
    actions: list[BandAction] = []
    for i, (sub, kept) in enumerate(zip(subs, check.kept, strict=True)):
        figures = (
            f"error {check.learned_errors[i]:.4g} against {check.fallback_errors[i]:.4g} for "
            "the classical tier"
            if probed
            else ""
        )
        if kept:
            note = f"; kept: on a probe band its {figures}" if probed else "; not checked"
            actions.append(BandAction("filled", how + note))
            continue
        samples = samples + apply_gain(fallback - samples, mask_on(sub, h, w, samples.device))
        action = fallback_actions[i]
        if probed:
            ratio = check.learned_errors[i] / max(check.fallback_errors[i], 1e-300)
            why = f"the learned {label} lost on a probe band ({figures})"
            check.warnings.append(
                f"regions[{i}]: the learned {label} lost to the classical tier on a probe band of "
                f"this image ({figures}, {10 * math.log10(max(ratio, 1e-300)):+.1f} dB): the "
                f"classical estimate ({action.action}) is used there"
            )
        else:
            why = f"the learned {label} could not be checked on this image ({calibration_note})"
        actions.append(
            BandAction(action.action, f"fallback to the classical tier ({action.reason}): {why}")
        )
    if not all(check.kept):  # what the classical tier said, but not about samples
        check.warnings += [
            f"fallback: {text}"
            for text in check.fallback.warnings
            if not text.startswith("the classical tier is deterministic")
        ]
    return samples, actions


__all__ = ["GuardCheck", "apply_check", "fit_spot_gain", "probe_check", "region_levels"]
