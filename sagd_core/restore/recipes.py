"""Training recipes for one corruption type (SAGD.md §4.2–4.3): re-exported from
:mod:`sagd_core.training.recipes`, where ``sagd train --recipe`` and the training presets find
them too.

From the corrupted images only: an ``omission`` model (forward noise zero in the band, trusted
projection on), a ``band`` model (noise only in the band, ``w = M``) and, as the isotropic
baseline, a ``standard`` white-noise model. From clean images, for comparison: a ``full``-support
white-noise model (for DDNM). The band is the corruption's own band spec.
"""

from __future__ import annotations

from sagd_core.training.recipes import (
    NAMED_CORRUPTIONS,
    ROLES,
    corruption_recipes,
    recipe_noise,
    resolve_corruption,
)

__all__ = ["NAMED_CORRUPTIONS", "ROLES", "corruption_recipes", "recipe_noise", "resolve_corruption"]
