"""Named training recipes (``sagd train --preset NAME``).

``demo`` is the model ``make serve`` ships: a tiny omission model on 16×16 digits, trained in
about a minute on two CPU cores. The ``digits-*`` presets are the recipes for one corruption type
(band noise in the annulus [0.15, 0.30) at γ = 1): from corrupted images only (``omission``,
``band``, and the isotropic ``standard`` baseline) and, for comparison, from clean images
(``full``, for DDNM).
"""

from __future__ import annotations

from collections.abc import Callable

from sagd_core.models import unet_preset
from sagd_core.spectral import BandSpec, NoiseSpec, parse_band_spec
from sagd_core.training.config import DataConfig, TrainConfig

DEMO_BAND: dict[str, object] = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}


def _corrupted(band: BandSpec, size: int) -> DataConfig:
    region = band.regions[0]
    low, high = getattr(region, "low", 0.0), getattr(region, "high", 0.5)
    corruption = {"kind": "band_noise", "low": low, "high": high, "gamma": 1.0,
                  "radius": band.radius}
    return DataConfig(source="digits", image_size=size, channels=1, corruption=corruption)


def _recipe(role: str, *, size: int, steps: int, unet: str, batch: int) -> TrainConfig:
    band = parse_band_spec(DEMO_BAND)
    if role == "omission":
        noise, data, project = NoiseSpec(omit=band), _corrupted(band, size), True
    elif role == "band":
        noise, data, project = NoiseSpec(kind="band", band=band), _corrupted(band, size), False
    elif role == "standard":
        noise, data, project = NoiseSpec(), _corrupted(band, size), False
    else:  # full: clean images, white noise
        noise, data, project = NoiseSpec(), DataConfig(source="digits", image_size=size), False
    return TrainConfig(
        model=unet_preset(unet, 1), noise=noise, band=band, role=role,  # type: ignore[arg-type]
        project_trusted=project, data=data, steps=steps, batch_size=batch,
        checkpoint_every=max(steps // 4, 1),
    )


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "demo": lambda: _recipe("omission", size=16, steps=300, unet="cpu-tiny", batch=32),
    "tiny-test": lambda: _recipe("standard", size=16, steps=20, unet="cpu-tiny", batch=8),
    "digits-omission": lambda: _recipe("omission", size=16, steps=3000, unet="cpu-small", batch=64),
    "digits-band": lambda: _recipe("band", size=16, steps=3000, unet="cpu-small", batch=64),
    "digits-standard": lambda: _recipe("standard", size=16, steps=3000, unet="cpu-small", batch=64),
    "digits-full": lambda: _recipe("full", size=16, steps=3000, unet="cpu-small", batch=64),
}


def training_preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]()
