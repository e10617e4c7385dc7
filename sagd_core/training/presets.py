"""Named training recipes (``sagd train --preset NAME``).

``demo`` is a tiny omission model on 16×16 digits, trained in about a minute on two CPU cores
(tests use it; ``make serve`` registers the ``default`` model below instead).
``{dataset}-{corruption}-{role}`` are the recipes for one corruption type
(:mod:`sagd_core.training.recipes`): ``dataset`` is ``digits`` (16 px), ``lfw`` or ``natural``
(32 px); ``corruption`` one of :data:`~sagd_core.training.recipes.NAMED_CORRUPTIONS`
(``band-noise``, ``periodic``, ``oriented``); ``role`` ``omission`` or ``band`` (from corrupted
images only), ``standard`` (isotropic, corrupted images: the baseline) or ``full`` (clean images,
for DDNM). ``digits-omission``, ``digits-band``, ``digits-standard`` and ``digits-full`` are the
band-noise recipes on digits (band noise in the annulus [0.15, 0.30) at γ = 1).

``default`` is the recipe of the natural-image model that ships with the project
(``sagd_core/models/default/``, ``make default-model``): a ``full`` model (white forward noise on
the whole spectrum, clean images) for ``method=ddnm``, which fills any band spec without
retraining (DESIGN.md §4.3), with the ``cpu-tiny`` U-Net (0.26 M parameters, 1 MB). One RGB
model: 4 of the 9 ``natural`` training photos are gray (copied to the three channels), so gray
images are in its training distribution and a gray image is restored as three equal channels
whose mean is read back. It is trained on 64-px patches of the
``natural`` TRAIN split (native and half scale) plus synthetic dead-leaves scenes
(:data:`DEFAULT_DATA`, assembled by :mod:`sagd_core.bench.default_model.data`); ``config.data``
records the natural part, the model's ``meta.json`` the whole mix. Run alone,
``sagd train --preset default`` trains on the natural patches only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sagd_core.models import unet_preset
from sagd_core.spectral import NoiseSpec
from sagd_core.training.config import DataConfig, TrainConfig
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


#: Patch side of the default model's training images (the issue asks for ≥ 64 px).
DEFAULT_PATCH = 64
#: The default model's training mix: patches of the ``natural`` TRAIN split at native scale and at
#: half scale (128-px patches averaged 2×2), and patches of dead-leaves scenes (half gray, half
#: RGB) drawn with seeds from ``leaves_seed`` on (the real-size benchmark uses seeds 1 and 2).
DEFAULT_DATA: dict[str, int] = {
    "natural_patches": 2048,
    "natural_half_scale_patches": 1024,
    "leaves_scenes": 16,
    "leaves_scene_size": 256,
    "leaves_patches": 1024,
    "leaves_seed": 10_000,
    "seed": 0,
}


def _default() -> TrainConfig:
    # Trains in 12 minutes on 2 shared CPU cores at nice 10 (MODEL_CARD.md).
    return TrainConfig(
        model=unet_preset("cpu-tiny", 3),
        noise=NoiseSpec(),  # white: support on the whole spectrum, so DDNM can fill any band
        role="full",
        data=DataConfig(
            source="natural",
            image_size=DEFAULT_PATCH,
            channels=3,
            count=DEFAULT_DATA["natural_patches"],
        ),
        steps=700,
        batch_size=8,
        lr=2e-3,
        warmup_steps=50,
        seed=0,
        checkpoint_every=100,
        device="auto",
    )


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "default": _default,
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
