"""Training recipes for one corruption type (SAGD.md §4.2–4.3).

From the corrupted images only: an ``omission`` model (forward noise zero in the band, trusted
projection on), a ``band`` model (noise only in the band, ``w = M``) and, as the isotropic
baseline, a ``standard`` white-noise model. From clean images, for comparison: a ``full``-support
white-noise model (for DDNM). The band is the corruption's own band spec.
"""

from __future__ import annotations

from typing import Any

from sagd_core.data import parse_corruption
from sagd_core.models import unet_preset
from sagd_core.spectral import BandSpec, NoiseSpec
from sagd_core.training.config import DataConfig, TrainConfig

ROLES = ("omission", "band", "standard", "full")


def corruption_recipes(
    corruption: dict[str, Any],
    *,
    source: str = "digits",
    image_size: int = 16,
    channels: int = 1,
    steps: int = 2000,
    batch_size: int = 64,
    unet: str = "cpu-tiny",
    lr: float = 2e-3,
    seed: int = 0,
    band: BandSpec | None = None,
    roles: tuple[str, ...] = ROLES,
    device: str = "auto",
    train_count: int | None = None,
) -> dict[str, TrainConfig]:
    """One :class:`TrainConfig` per role for ``corruption`` applied to ``source``.

    ``band`` overrides the spec the models are built for (default: the corruption's own band).
    ``train_count`` keeps only the first images of the training split, so the rest can serve
    to calibrate the fill (:mod:`calibration`) on images the models never saw.
    """
    parsed = parse_corruption(corruption)
    spec = band or parsed.band_spec()
    corrupted = DataConfig(source=source, image_size=image_size, channels=channels,
                           corruption=parsed.model_dump(mode="json"), corruption_seed=seed,
                           count=train_count)
    clean = DataConfig(source=source, image_size=image_size, channels=channels,
                       count=train_count)
    noises = {
        "omission": (NoiseSpec(omit=spec), corrupted, True),
        "band": (NoiseSpec(kind="band", band=spec), corrupted, False),
        "standard": (NoiseSpec(), corrupted, False),
        "full": (NoiseSpec(), clean, False),
    }
    out = {}
    for role in roles:
        if role not in noises:
            raise ValueError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
        noise, data, project = noises[role]
        out[role] = TrainConfig(
            model=unet_preset(unet, channels), noise=noise, band=spec,
            role=role,  # type: ignore[arg-type]
            project_trusted=project, data=data, steps=steps, batch_size=batch_size, lr=lr,
            warmup_steps=min(50, steps // 10), seed=seed, checkpoint_every=max(steps, 1),
            device=device,
        )
    return out


__all__ = ["ROLES", "corruption_recipes"]
