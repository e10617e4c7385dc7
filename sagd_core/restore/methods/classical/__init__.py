"""The classical tier (``method="classical"``): each band region handled by the estimator that
fits what it holds, no model and no torch.

Order: sinusoids are fitted and subtracted first (they leak everywhere; a screen that multiplies
the image is divided out, :mod:`~.demodulate`), then stripe profiles
(inside their wedge), then band-limited noise and any declared broadband noise are Wiener-filtered
together (:mod:`~.wiener`). Which estimator each region gets, and why, is decided by
:mod:`~.kinds` and stated per region in the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sagd_core.restore.methods.classical.guard import (
    EXPLAINED_SHARE,
    RESIDUAL_RATIO,
    ProbeVerdict,
    check_noise_region,
    residual_ratio,
)
from sagd_core.restore.methods.classical.kinds import RegionPlan, plan_region
from sagd_core.restore.methods.classical.sinusoid import (
    Component,
    fit_sinusoids,
    interference,
    windowed_power,
)
from sagd_core.restore.methods.classical.stripes import stripe_profile
from sagd_core.restore.methods.classical.wiener import NoiseModel, noise_model, wiener_denoise
from sagd_core.restore.report import BandAction, MethodOutcome, region_specs
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.fft import apply_gain
from sagd_core.spectral.grid import full_from_half
from sagd_core.spectral.masks import band_mask

if TYPE_CHECKING:
    from sagd_core.restore.progress import Progress
    from sagd_core.restore.request import RestoreRequest

_ACTIONS = {"sinusoid": "subtracted", "stripes": "subtracted", "noise": "denoised"}


def plan_regions(request: RestoreRequest) -> list[RegionPlan]:
    """The estimator of every region of the request's band, in the spec's order."""
    return [plan_region(i, region) for i, region in enumerate(request.band.regions)]


def _guard_noise_regions(
    x: np.ndarray,
    regions: dict[int, np.ndarray],
    subs: list[BandSpec],
    band_half: np.ndarray,
    noise_std: float,
) -> tuple[dict[int, ProbeVerdict | None], dict[int, np.ndarray], NoiseModel | None]:
    """Probe every noise region (:mod:`~.guard`); the losers move from ``regions`` to the
    returned fallback (they get the notch). Also returns the noise model the probes used when
    it still holds for ``regions`` (no region fell back), for the Wiener filter."""
    if not regions:
        return {}, {}, None
    h, w = x.shape[-2:]
    model = noise_model(x, regions, band_half, noise_std)
    estimate = model.estimate
    band_full = full_from_half(band_half, w)
    verdicts: dict[int, ProbeVerdict | None] = {}
    fallback: dict[int, np.ndarray] = {}
    for index in list(regions):
        region_full = band_mask(subs[index], h, w, half=False)
        verdict = check_noise_region(x, region_full, band_full, estimate.levels[index], noise_std)
        verdicts[index] = verdict
        if verdict is not None and not verdict.estimator_wins:
            fallback[index] = regions.pop(index)
    return verdicts, fallback, None if fallback else model


def run_classical(y: np.ndarray, request: RestoreRequest, progress: Progress) -> MethodOutcome:
    """The classical tier on ``y`` ``(1, C, H, W)`` (model range); one deterministic sample."""
    x = np.array(y[0], dtype=np.float64)
    h, w = x.shape[-2:]
    plans = plan_regions(request)
    subs = region_specs(request.band)
    band_full = band_mask(request.band, h, w, half=False) > 0
    region_details: list[dict[str, object]] = []
    details: dict[str, object] = {"regions": region_details, "order": "sinusoids, stripes, noise"}
    warnings: list[str] = []
    actions: list[BandAction] = []

    sinusoids = {
        p.index: band_mask(subs[p.index], h, w, half=False) > 0
        for p in plans
        if p.kind == "sinusoid"
    }
    components: list[Component] = []
    residual_ratios: dict[int, float] = {}
    notched_after_fit: list[int] = []
    dropped: list[int] = []
    if sinusoids:
        # The image without the sinusoid regions: the first guess of a multiplicative screen's
        # envelope (refined by the division, :mod:`~.demodulate`).
        envelope = apply_gain(x, 1.0 - band_mask(request.band, h, w))
        envelope -= envelope.mean(axis=(1, 2), keepdims=True)
        field, components, found_warnings = fit_sinusoids(x, sinusoids, band_full, envelope)
        warnings += found_warnings
        after = windowed_power(x - field)
        before: np.ndarray | None = None  # only needed when a region fails
        for index, region_full in sinusoids.items():
            residual_ratios[index] = ratio = residual_ratio(after, region_full, band_full)
            if ratio <= RESIDUAL_RATIO:
                continue
            notched_after_fit.append(index)
            before = windowed_power(x) if before is None else before
            explained = 1.0 - float(after[region_full].sum()) / max(
                float(before[region_full].sum()), 1e-300
            )
            clear = explained >= EXPLAINED_SHARE
            if not clear:
                dropped.append(index)
            warnings.append(
                f"regions[{index}]: after the sinusoid fit the band still stands {ratio:.1f}× "
                "above its surroundings, so what is left there is set to zero"
                + (
                    ""
                    if clear
                    else f"; the fit explained only {explained:.0%} of it and is dropped (a wrong "
                    "sinusoid leaks into every bin)"
                )
            )
        if dropped:  # a wrong sinusoid would leak into every bin: refit without it
            for comp in components:
                comp.dropped = comp.region in dropped
            field = interference(x, [c for c in components if not c.dropped], sinusoids, envelope)
        x = x - field
        for index in notched_after_fit:
            x = apply_gain(x, 1.0 - band_mask(subs[index], h, w))
        progress.advance(len(sinusoids))
    for plan in plans:
        if plan.kind == "stripes" and plan.axis is not None:
            profile = stripe_profile(x, plan.axis)
            x = x - apply_gain(profile, band_mask(subs[plan.index], h, w))
            progress.advance()
    noise_regions = {p.index: band_mask(subs[p.index], h, w) for p in plans if p.kind == "noise"}
    noise_std = request.input_noise_std
    band_half = band_mask(request.band, h, w)
    verdicts, fallback, model = _guard_noise_regions(x, noise_regions, subs, band_half, noise_std)
    estimate = None
    if noise_regions or noise_std > 0:
        x, estimate = wiener_denoise(x, noise_regions, band_half, noise_std, model)
    for index in fallback:
        x = apply_gain(x, 1.0 - band_mask(subs[index], h, w))
        warnings.append(
            f"regions[{index}]: the Wiener filter lost to the notch on a probe band next to it "
            "(no signal to keep there): the region is set to zero"
        )
    progress.finish()

    for plan in plans:
        entry: dict[str, object] = {"index": plan.index, "estimator": plan.kind, "why": plan.reason}
        if plan.kind == "sinusoid":
            entry["components"] = [c.describe() for c in components if c.region == plan.index]
            entry["residual_ratio"] = residual_ratios.get(plan.index)
            entry["notched_after_fit"] = plan.index in notched_after_fit
            if plan.index in dropped:
                entry["estimator"] = "notch"
        if plan.kind == "noise":
            verdict = verdicts.get(plan.index)
            entry["probe"] = None if verdict is None else verdict.describe()
            if estimate is not None and plan.index in estimate.band_std:
                entry["noise_std"] = estimate.band_std[plan.index]
        region_details.append(entry)
        if plan.index in fallback:
            entry["estimator"] = "notch"
            actions.append(BandAction("omitted", "fallback: the probe band favoured the notch"))
        elif plan.index in dropped:
            actions.append(
                BandAction("omitted", "fallback: a sinusoid fit did not explain the band")
            )
        elif plan.index in notched_after_fit:
            actions.append(
                BandAction("subtracted", plan.reason + "; what the fit left was set to zero")
            )
        else:
            actions.append(BandAction(_ACTIONS[plan.kind], plan.reason))
    if noise_std > 0:
        details["broadband_noise"] = f"Wiener-filtered for the declared std {noise_std:g}"
    if request.samples > 1:
        warnings.append("the classical tier is deterministic: samples > 1 gives no uncertainty map")
    kinds = sorted({p.kind for p in plans})
    trusted = (
        f"denoised (declared noise std {noise_std:g})"
        if noise_std > 0
        else (
            "corrected only by the fitted sinusoids' leakage"
            if "sinusoid" in kinds
            else "returned exactly"
        )
    )
    return MethodOutcome(
        samples=x[None],
        band=BandAction("estimated", "classical estimators per region: " + ", ".join(kinds)),
        trusted=trusted,
        details=details,
        warnings=warnings,
        regions=actions,
    )


__all__ = ["plan_regions", "run_classical"]
