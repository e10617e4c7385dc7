"""``method="auto"``: which route a request takes (DESIGN.md §7.4).

The classical tier, unless a learned read has been shown to help on this band. Two qualify, on
a band that the classical tier treats as noise, for the posterior mean:

- a **band model trained on images corrupted by noise shaped like its own band** (the user's,
  :func:`~sagd_core.restore.methods.corruption_shaped.corruption_shaped_reason`), without
  declared broadband noise: its one-call clean read (selective omission's headline path, so it
  comes first when given);
- otherwise the **shipped band reader** (:mod:`sagd_core.restore.methods.band_read`), trained on
  clean TRAIN patches under random bands and levels: it reads any noise band, with or without
  declared broadband noise.

On bands the classical tier fits (sinusoids, stripes) with declared broadband noise, the fit is
subtracted and the band reader removes the noise, under the same guard.

Either read runs under the per-image guard: per region it is kept only where it beats the
classical tier on recorrupted copies of the image, else the classical estimate is used (so
``auto`` falls back region by region, and says so). On sinusoid and stripe bands without
declared broadband noise the classical tier's parametric estimators run alone (no learned
estimate comes near them). The full-support
default model (DDNM) is never used by ``auto``: it is below the classical tier on every
corruption kind at real size. When models are given but not used, :func:`choose_route` says
which condition failed, for the report's warning. This module imports no torch.
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
    #: Why the shipped band reader runs (None: it does not), when no band model qualifies.
    reader: str | None = None


def choose_route(
    request: RestoreRequest, models: ModelSet | None, channels: int | None = None
) -> Route:
    """The route ``auto`` takes for ``request`` with ``models`` on an image of ``channels``
    channels (None: not checked) (module docstring): the user's band model when it qualifies,
    else the shipped band reader on a noise-like band, else the classical tier."""
    route = band_model_route(request, models, channels)
    if route.learned is not None:
        return route
    why = reader_reason(request)
    return route if why is None else Route(None, route.not_learned, reader=why)


def reader_reason(request: RestoreRequest) -> str | None:
    """Why the shipped band reader applies to ``request``, or None: a posterior-mean request
    on a band that the classical tier treats as noise alone (any band, any declared broadband
    noise: the reader takes both levels), or on a band it fits (sinusoids, stripes) with
    declared broadband noise (the fit is subtracted, the reader removes the noise)."""
    if request.estimator != "mean":
        return None
    from sagd_core.restore.methods.classical import plan_regions

    kinds = {plan.kind for plan in plan_regions(request)}
    if kinds == {"noise"}:
        return (
            "the classical tier treats the band as noise, and the shipped band reader reads "
            "any noise band in one call"
        )
    if "noise" not in kinds and request.input_noise_std > 0:
        return (
            "broadband noise is declared: the classical tier's sinusoid / stripe estimates are "
            "subtracted and the shipped band reader removes the noise in one call"
        )
    return None


def band_model_route(
    request: RestoreRequest, models: ModelSet | None, channels: int | None = None
) -> Route:
    """The route of the user's band model (``learned`` set when it qualifies). Only the band
    model matters: the read runs with it alone, so a full model of other channels given beside
    it is no obstacle."""
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


__all__ = ["Route", "band_model_route", "choose_route", "reader_reason"]
