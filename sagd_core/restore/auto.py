"""``method="auto"``: which route a request takes (DESIGN.md §4).

The classical tier, unless a learned fill has been shown to help on this band. Today one learned
fill qualifies: a **band model trained on images corrupted by noise shaped like its own band**
(:func:`~sagd_core.restore.methods.corruption_shaped.corruption_shaped_reason`), on a band that
the classical tier treats as noise, without declared broadband noise. Its one-call clean read is
then run under the per-image guard of the ``sagd`` method: per region it is kept only where it
beats the classical tier on recorrupted copies of the image, else the classical estimate is used (so
``auto`` falls back region by region, and says so). On the real-size benchmark such a model,
trained on corrupted 64-px patches only, is above the classical tier on dense texture and the
guard keeps the classical estimate on the photos (docs/BENCHMARKS.md).

The full-support default model (DDNM) does not qualify: it is below the classical tier on every
corruption kind at real size. When models are given but not used, :func:`choose_route` says
which condition failed, for the report's warning. This module imports torch only when a band
model is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagd_core.restore.models import ModelSet
    from sagd_core.restore.request import RestoreRequest


@dataclass(frozen=True)
class Route:
    """``auto``'s decision: ``learned`` is why the guarded one-call read of the band model runs
    (None: the classical tier runs), ``not_learned`` why the given models are not used (None
    when none was given or the read runs)."""

    learned: str | None
    not_learned: str | None = None


def choose_route(
    request: RestoreRequest, models: ModelSet | None, channels: int | None = None
) -> Route:
    """The route ``auto`` takes for ``request`` with ``models`` on an image of ``channels``
    channels (None: not checked) (module docstring). Only the band model matters: the read
    runs with it alone, so a full model of other channels given beside it is no obstacle."""
    if models is None or not models.roles():
        return Route(None)
    band_model = models.band
    if band_model is None:
        return Route(
            None,
            "no band model was given (auto uses a band model trained on noise "
            "of its band's shape; a full model is only used by method 'ddnm')",
        )
    if request.input_noise_std > 0:
        return Route(
            None,
            "broadband noise is declared (input_noise_std > 0): the band "
            "model's one-call read assumes the band's noise alone",
        )
    if request.estimator != "mean":
        return Route(
            None,
            f"estimator {request.estimator!r}: the one-call read gives the posterior mean only",
        )
    if channels is not None and band_model.channels != channels:
        return Route(
            None,
            f"the band model was trained on {band_model.channels}-channel images and the image "
            f"has {channels} (its read assumes the noise it was trained on, channel by channel)",
        )
    if band_model.config.band != request.band:
        return Route(None, "the band model was trained for another band than the request's")
    from sagd_core.restore.methods.classical import plan_regions
    from sagd_core.restore.methods.corruption_shaped import corruption_shaped_reason

    kinds = sorted({plan.kind for plan in plan_regions(request)})
    if kinds != ["noise"]:
        return Route(
            None,
            f"the classical tier treats the band as {', '.join(kinds)}, not as "
            "noise alone: only noise-like bands have a learned read",
        )
    why = corruption_shaped_reason(band_model)
    if why is None:
        return Route(
            None,
            "the band model was not trained on images corrupted by noise of "
            "its own band's shape (nor calibrated as such)",
        )
    return Route(why)


__all__ = ["Route", "choose_route"]
