"""``method="auto"``: which route a request takes (DESIGN.md §4).

The classical tier, unless a learned fill has been shown to help on this band. Today one learned
fill qualifies: a **band model trained on images corrupted by noise shaped like its own band**
(:func:`~sagd_core.restore.methods.corruption_shaped.corruption_shaped_reason`), on a band that
the classical tier treats as noise, without declared broadband noise. Its one-call clean read is
then run under the per-image guard of the ``sagd`` method: per region it is kept only where it
beats the classical tier on a probe band of the image, else the classical estimate is used (so
``auto`` falls back region by region, and says so). On the real-size benchmark such a model,
trained on corrupted 64-px patches only, is above the classical tier on dense texture and the
guard keeps the classical estimate on the photos (docs/BENCHMARKS.md).

The full-support default model (DDNM) does not qualify: it is below the classical tier on every
corruption kind at real size. This module imports torch only when a band model is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagd_core.restore.models import ModelSet
    from sagd_core.restore.request import RestoreRequest


def learned_route(request: RestoreRequest, models: ModelSet | None) -> str | None:
    """Why ``auto`` should run the guarded one-call read of ``models.band`` for ``request``, or
    None (then it runs the classical tier)."""
    band_model = None if models is None else models.band
    if band_model is None or request.input_noise_std > 0 or request.estimator != "mean":
        return None
    if band_model.config.band != request.band:
        return None
    from sagd_core.restore.methods.classical import plan_regions
    from sagd_core.restore.methods.corruption_shaped import corruption_shaped_reason

    if {plan.kind for plan in plan_regions(request)} != {"noise"}:
        return None
    return corruption_shaped_reason(band_model)


__all__ = ["learned_route"]
