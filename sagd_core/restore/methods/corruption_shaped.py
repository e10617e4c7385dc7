"""One-call clean restoration with a model trained on the corrupted images with forward noise
shaped like the corruption (DESIGN.md §4.3, last point; the math in :mod:`sagd_core.samplers.
corrupted_read`).

For band-limited noise of pixel std ``s`` (flat in the band) a **band model** (``w = M``) trained
on the corrupted images is such a model: called once at ``z = √ᾱ y`` — the band of the observation
kept, not discarded as the band fill does — and read with ``ρ``, it returns the clean posterior
mean ``E[x | y]`` from the whole observation. The trusted bands come back exactly (the optimal ε
has no component there and the network's is removed).

``method="sagd"`` takes this path (:func:`corruption_shaped_reason`, :func:`read_setting`) for a
band model trained on noise-like corruption of its own band (``band_noise`` or ``oriented`` in
its training config, or ``corruption_shaped`` in its calibration) with forward noise flat in the
band. ``s`` comes from the calibration (``corruption_var``, :mod:`sagd_core.calibration.fill`)
or, without one, from the image itself (:func:`~sagd_core.spectral.corruption_level.
estimate_corruption_level`); the read's κ from the calibration at the restore size
(``read_excess``, chosen by SURE) or :data:`READ_EXCESS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from sagd_core.restore.models import LoadedModel
from sagd_core.samplers.corrupted_read import (
    READ_EXCESS,
    clean_alpha_bar,
    clean_read,
    noise_share,
    read_time,
)
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.corruption_level import estimate_corruption_level

#: Corruption kinds (``sagd_core.data.corruptions``) that are Gaussian noise shaped by a flat mask.
NOISE_LIKE_KINDS = ("band_noise", "oriented")
#: Below this ``s²`` the band holds no measurable corruption and the read is not taken.
MIN_CORRUPTION_VAR = 1e-8


def one_call_clean_mean(
    model: LoadedModel,
    y: torch.Tensor,
    corruption_std: float,
    *,
    excess: float = READ_EXCESS,
    t: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """``E[x | y]`` for ``y`` ``(B, C, H, W)`` from ``model``'s one call at training time ``t``
    (default :func:`read_time` with ``excess``), computed in ``dtype``; and what the report
    says: the time, ``ᾱ``, the clean level ``ᾱ'``, and the factor by which an error of the
    network's ε is amplified in the estimate."""
    s2 = corruption_std**2
    in_range = True
    if t is None:
        t, in_range = read_time(model.schedule, s2, excess)
    h, w = y.shape[-2:]
    noise_op = model.noise_op(h, w)
    estimate = clean_read(
        model.eps_predictor(noise_op), y.to(dtype), model.schedule, noise_op, t, s2
    )
    a = float(model.schedule.alpha_bars[t])
    info: dict[str, Any] = {
        "t": t,
        "alpha_bar": a,
        "clean_alpha_bar": clean_alpha_bar(a, s2),
        "eps_error_gain": math.sqrt(1.0 - a) / (noise_share(a, s2) * math.sqrt(a)),
        "in_range": in_range,
    }
    return estimate, info


def corruption_shaped_reason(model: LoadedModel) -> str | None:
    """Why ``model`` is a band model trained with forward noise shaped like its corruption, or
    None: its calibration says so (``corruption_shaped``), its training images were declared
    corrupted by noise flat in its band (``data.declared_corruption``, a user's own folder), or
    they were corrupted by a noise-like corruption (:data:`NOISE_LIKE_KINDS`) of exactly its
    noise band."""
    config = model.config
    if config.role != "band" or config.noise.kind != "band" or config.noise.band is None:
        return None
    calib = model.meta.get("fill_calibration")
    if isinstance(calib, dict) and calib.get("corruption_shaped"):
        return "its calibration records corruption-shaped training"
    if config.data.declared_corruption == "noise":
        return "its training images were declared corrupted by noise flat in its band"
    corruption = config.data.corruption
    if not corruption or corruption.get("kind") not in NOISE_LIKE_KINDS:
        return None
    from sagd_core.data.corruptions import parse_corruption

    if parse_corruption(corruption).band_spec() != config.noise.band:
        return None
    return f"trained on {corruption['kind']} corrupted images of its own band"


def flat_in_band(model: LoadedModel, height: int, width: int) -> bool:
    """Whether the model's forward noise is flat where it is non-zero (``w = M`` with a hard
    mask), which the identity needs (a soft roll-off is not the corruption's shape)."""
    weights = model.noise_op(height, width).weights.cpu().numpy()
    inside = weights[weights > 0]
    return inside.size > 0 and float(inside.max() - inside.min()) <= 1e-6 * float(inside.max())


@dataclass(frozen=True)
class ReadSetting:
    """Where the one-call read is taken for one image: the corruption std ``s`` and where it
    came from, κ and where it came from, the read time ``t`` and whether it is in the
    schedule's range (:func:`~sagd_core.samplers.corrupted_read.read_time`)."""

    corruption_std: float
    std_from: str
    excess: float
    excess_from: str
    t: int
    in_range: bool

    def scaled(self, model: LoadedModel, factor: float) -> ReadSetting:
        """The same read of an image whose band carries ``factor ≥ 1`` times the corruption's
        power (the guard's recorrupted copies, :mod:`~sagd_core.restore.methods.
        recorrupted_risk`). The model's prior still holds the corruption ``s²`` it was trained
        on; the rest, ``(factor − 1) s²``, is noise on top of it, which the model removes as
        its own forward noise: the read keeps ``s`` and is taken ``(factor − 1) s²`` later
        (:func:`~sagd_core.samplers.corrupted_read.read_time` with κ + factor − 1)."""
        excess = self.excess + factor - 1.0
        t, in_range = read_time(model.schedule, self.corruption_std**2, excess)
        return replace(self, excess=excess, t=t, in_range=in_range)

    def describe(self) -> dict[str, Any]:
        return {
            "corruption_std": self.corruption_std,
            "corruption_std_from": self.std_from,
            "read_excess": self.excess,
            "read_excess_from": self.excess_from,
            "t": self.t,
            "in_range": self.in_range,
        }


def read_setting(
    model: LoadedModel, image: np.ndarray, spec: BandSpec, *, calibrated_here: bool
) -> ReadSetting | str:
    """The read of ``model`` for ``image`` ``(C, H, W)`` (model range), or why it cannot be
    taken (no corruption measurable). ``calibrated_here``: the model's calibration was measured
    at this restore's size, so its κ applies."""
    calib = model.meta.get("fill_calibration")
    calib = calib if isinstance(calib, dict) else {}
    h, w = image.shape[-2:]
    if calib.get("corruption_var") is not None:
        var, std_from = float(calib["corruption_var"]), "calibration"
    else:
        weights = model.noise_op(h, w).weights.cpu().numpy()
        try:
            var = estimate_corruption_level(image[None], spec, weights).variance
        except ValueError as exc:
            return f"the corruption level cannot be estimated from this image ({exc})"
        std_from = "estimated from the image"
    if not var > MIN_CORRUPTION_VAR:
        return f"no corruption measured in the band (s² = {var:.3g}, {std_from})"
    if calibrated_here and calib.get("read_excess") is not None:
        excess, excess_from = float(calib["read_excess"]), "calibration (SURE)"
    else:
        excess, excess_from = READ_EXCESS, "default"
    t, in_range = read_time(model.schedule, var, excess)
    return ReadSetting(math.sqrt(var), std_from, excess, excess_from, t, in_range)


__all__ = [
    "MIN_CORRUPTION_VAR",
    "NOISE_LIKE_KINDS",
    "ReadSetting",
    "corruption_shaped_reason",
    "flat_in_band",
    "one_call_clean_mean",
    "read_setting",
]
