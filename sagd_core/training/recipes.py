"""Training recipes for one corruption type (DESIGN.md §4.2–4.3), shared by ``sagd train --recipe``,
the ``{dataset}-{corruption}-{role}`` presets and ``sagd bench restore``.

From the corrupted images only:

- ``omission``: forward noise zero in the band (``NoiseSpec(omit=band)``), trusted projection on;
  it denoises the trusted bands (§4.2) and never sees the band;
- ``band``: forward noise only in the band (``NoiseSpec(kind="band", band=band)``, ``w = M``); it
  fills the band conditioned on the rest (§4.3);
- ``standard``: isotropic white noise, the baseline trained on the same corrupted images.

From clean images, for comparison: ``full`` (white noise on the whole spectrum, for DDNM).

The band is the corruption's own band spec unless one is given (e.g. from ``sagd analyze``).
"""

from __future__ import annotations

from typing import Any

from sagd_core.data import parse_corruption
from sagd_core.models import unet_preset
from sagd_core.spectral import BandSpec, NoiseSpec
from sagd_core.training.config import DataConfig, TrainConfig

ROLES: tuple[str, ...] = ("omission", "band", "standard", "full")

#: Named corruptions (``--corruption NAME``): the three corruption types of ``sagd bench restore``
#: (band noise in an annulus at γ = 1, random-phase periodic stripes, oriented stripe noise).
NAMED_CORRUPTIONS: dict[str, dict[str, Any]] = {
    "band-noise": {"kind": "band_noise", "low": 0.15, "high": 0.3, "gamma": 1.0},
    "periodic": {
        "kind": "periodic",
        "amplitude": 0.3,
        "notch_radius": 0.04,
        "frequencies": [[0.25, 0.125], [-0.125, 0.3125]],
    },
    "oriented": {
        "kind": "oriented",
        "angle_deg": 30.0,
        "low": 0.1,
        "high": 0.5,
        "amplitude": 0.5,
        "tolerance_deg": 8.0,
    },
}


def resolve_corruption(corruption: str | dict[str, Any]) -> dict[str, Any]:
    """A corruption as a validated JSON-ready dict: a name of :data:`NAMED_CORRUPTIONS` or a
    corruption dict (``sagd_core.data.corruptions``); ``CorruptionError`` if invalid."""
    if isinstance(corruption, str):
        if corruption not in NAMED_CORRUPTIONS:
            raise ValueError(
                f"unknown corruption {corruption!r}; named corruptions: "
                f"{', '.join(NAMED_CORRUPTIONS)} (or give a corruption JSON)"
            )
        corruption = NAMED_CORRUPTIONS[corruption]
    return parse_corruption(corruption).model_dump(mode="json")


def recipe_noise(role: str, band: BandSpec) -> tuple[NoiseSpec, bool, bool]:
    """``(noise spec, trained on corrupted images?, trusted projection?)`` of ``role``."""
    if role == "omission":
        return NoiseSpec(omit=band), True, True
    if role == "band":
        return NoiseSpec(kind="band", band=band), True, False
    if role == "standard":
        return NoiseSpec(), True, False
    if role == "full":
        return NoiseSpec(), False, False
    raise ValueError(f"unknown recipe {role!r}; valid: {', '.join(ROLES)}")


def corruption_recipes(
    corruption: str | dict[str, Any],
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
    checkpoint_every: int | None = None,
) -> dict[str, TrainConfig]:
    """One :class:`TrainConfig` per role for ``corruption`` applied to ``source``.

    ``band`` overrides the spec the models are built for (default: the corruption's own band).
    ``train_count`` keeps only the first images of the training split, so the rest can serve
    to calibrate the fill (``sagd_core.calibration.fill``) on images the models never saw.
    """
    parsed = parse_corruption(resolve_corruption(corruption))
    spec = band or parsed.band_spec()
    corrupted = DataConfig(
        source=source,
        image_size=image_size,
        channels=channels,
        corruption=parsed.model_dump(mode="json"),
        corruption_seed=seed,
        count=train_count,
    )
    clean = DataConfig(source=source, image_size=image_size, channels=channels, count=train_count)
    out = {}
    for role in roles:
        noise, on_corrupted, project = recipe_noise(role, spec)
        out[role] = TrainConfig(
            model=unet_preset(unet, channels),
            noise=noise,
            band=spec,
            role=role,  # type: ignore[arg-type]
            project_trusted=project,
            data=corrupted if on_corrupted else clean,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            warmup_steps=min(50, steps // 10),
            seed=seed,
            checkpoint_every=checkpoint_every or max(steps, 1),
            device=device,
        )
    return out


__all__ = [
    "NAMED_CORRUPTIONS",
    "ROLES",
    "corruption_recipes",
    "recipe_noise",
    "resolve_corruption",
]
