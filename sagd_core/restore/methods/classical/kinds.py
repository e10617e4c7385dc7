"""Which estimator each band region gets in the classical tier, and why.

A region may say what it holds (``"model"`` in the band spec); otherwise the geometry decides:
a notch holds a periodic interference (a sinusoid), a wedge through DC along an image axis with
a small tolerance holds stripes (row or column offsets), anything else (annulus, box, wide or
oblique wedge) band-limited noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sagd_core.spectral.bands import Annulus, Box, Notch, Region, RegionModel, Wedge

#: Wedges at most this wide (degrees either side of the axis) are stripes by default.
STRIPE_TOLERANCE_DEG = 10.0
#: How far a stripe wedge may point away from an image axis (degrees).
AXIS_SLACK_DEG = 1.0

StripeAxis = Literal["columns", "rows"]


@dataclass(frozen=True)
class RegionPlan:
    """The estimator for one region: its kind, the stripe axis for stripes, and why."""

    index: int
    kind: RegionModel
    reason: str
    axis: StripeAxis | None = None


def stripe_axis(region: Wedge) -> StripeAxis | None:
    """``columns`` for energy on the fx axis (the profile varies along x), ``rows`` for the fy
    axis, ``None`` for an oblique wedge."""
    angle = region.angle_deg % 180.0
    if min(angle, 180.0 - angle) <= AXIS_SLACK_DEG:
        return "columns"
    if abs(angle - 90.0) <= AXIS_SLACK_DEG:
        return "rows"
    return None


def plan_region(index: int, region: Region) -> RegionPlan:
    """The estimator for ``region`` (see the module docstring)."""
    declared = region.model
    if isinstance(region, Wedge):
        axis = stripe_axis(region)
        if declared == "stripes" or (
            declared is None and axis is not None and region.tolerance_deg <= STRIPE_TOLERANCE_DEG
        ):
            if axis is None:
                return RegionPlan(
                    index,
                    "noise",
                    "declared stripes, but the wedge is not along an image axis: treated as "
                    "band-limited noise",
                )
            why = "declared stripes" if declared else "a narrow wedge through DC along an axis"
            return RegionPlan(index, "stripes", why + f": {axis[:-1]} offsets", axis)
    if declared == "stripes":
        return RegionPlan(
            index, "noise", "declared stripes, but only a wedge can hold them: treated as noise"
        )
    if declared == "sinusoid" or (declared is None and isinstance(region, Notch)):
        why = "declared periodic interference" if declared else "a notch"
        return RegionPlan(index, "sinusoid", why + ": a sinusoid fitted and subtracted")
    shape = {Annulus: "an annulus", Box: "a box", Wedge: "a wide or oblique wedge"}.get(
        type(region), "a region"
    )
    why = "declared band-limited noise" if declared == "noise" else shape
    return RegionPlan(index, "noise", why + ": band-limited noise, Wiener-filtered")


__all__ = ["RegionPlan", "StripeAxis", "plan_region", "stripe_axis"]
