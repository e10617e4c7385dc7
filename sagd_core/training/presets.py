"""Named training recipes (``sagd train --preset NAME``).

``demo`` is the model ``make serve`` ships: a tiny omission model on 16×16 digits, trained in
about a minute on two CPU cores. ``{dataset}-{corruption}-{role}`` are the recipes for one
corruption type (:mod:`sagd_core.training.recipes`): ``dataset`` is ``digits`` (16 px), ``lfw`` or
``natural`` (32 px); ``corruption`` one of :data:`~sagd_core.training.recipes.NAMED_CORRUPTIONS`
(``band-noise``, ``periodic``, ``oriented``); ``role`` ``omission`` or ``band`` (from corrupted
images only), ``standard`` (isotropic, corrupted images: the baseline) or ``full`` (clean images,
for DDNM). ``digits-omission``, ``digits-band``, ``digits-standard`` and ``digits-full`` are the
band-noise recipes on digits (band noise in the annulus [0.15, 0.30) at γ = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sagd_core.training.config import TrainConfig
from sagd_core.training.recipes import NAMED_CORRUPTIONS, ROLES, corruption_recipes

DEMO_BAND: dict[str, object] = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}

#: Image size of each dataset's presets.
PRESET_SIZES: dict[str, int] = {"digits": 16, "lfw": 32, "natural": 32}


def _recipe(
    role: str,
    *,
    corruption: str = "band-noise",
    source: str = "digits",
    size: int = 16,
    steps: int = 3000,
    unet: str = "cpu-small",
    batch: int = 64,
) -> TrainConfig:
    return corruption_recipes(
        corruption,
        source=source,
        image_size=size,
        steps=steps,
        batch_size=batch,
        unet=unet,
        roles=(role,),
        checkpoint_every=max(steps // 4, 1),
    )[role]


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "demo": partial(_recipe, "omission", steps=300, unet="cpu-tiny", batch=32),
    "tiny-test": partial(_recipe, "standard", steps=20, unet="cpu-tiny", batch=8),
    **{f"digits-{role}": partial(_recipe, role) for role in ROLES},
    **{
        f"{source}-{corruption}-{role}": partial(
            _recipe, role, corruption=corruption, source=source, size=size
        )
        for source, size in PRESET_SIZES.items()
        for corruption in NAMED_CORRUPTIONS
        for role in ROLES
    },
}


def training_preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]()
