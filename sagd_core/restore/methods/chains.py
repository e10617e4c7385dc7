"""What the model-based restorations share: masks on the device, generators, the sampler call,
and checks that a model's forward noise has support where the method needs it.

Sampling is ancestral (DDIM with η = 1, i.e. DDPM posterior steps on the plan's grid) so that
``samples > 1`` gives independent posterior samples whose mean is the MMSE estimate and whose
spread is the uncertainty (DESIGN.md §4.4).
"""

from __future__ import annotations

import numpy as np
import torch

from sagd_core.restore.errors import ModelMismatchError
from sagd_core.restore.models import LoadedModel
from sagd_core.restore.progress import Progress
from sagd_core.samplers import sample_ddim
from sagd_core.samplers.common import StepInfo, X0Transform
from sagd_core.schedules import MEAN_ALPHA_BAR, SamplingPlan
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.masks import band_mask
from sagd_core.spectral.operator import SpectralNoise

ETA = 1.0
# MEAN_ALPHA_BAR (where posterior-mean estimates are read off the chains) lives with the
# schedules, so that plan design (sagd_core.planning) reads it without importing restore.
#: Share of a region's bins a model may lack noise support in before it is refused.
SUPPORT_TOLERANCE = 0.01


def mask_on(spec: BandSpec, h: int, w: int, device: torch.device) -> torch.Tensor:
    """The band mask ``M`` on the half grid as a float64 tensor on ``device``."""
    return torch.tensor(band_mask(spec, h, w), dtype=torch.float64, device=device)


def generator_for(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def support_gap(weights: np.ndarray, region: np.ndarray) -> float:
    """Share of ``region`` (a half-grid mask, weights in [0, 1]) where ``weights`` are zero."""
    total = float(region.sum())
    if total == 0.0:
        return 0.0
    return float(region[weights <= 0].sum()) / total


def require_support(
    model: LoadedModel, region: np.ndarray, h: int, w: int, *, role: str, where: str
) -> SpectralNoise:
    """The model's noise operator at ``h × w``, after checking that its forward noise covers
    ``region`` (else the model cannot act there: DESIGN.md §3.5, §4.2)."""
    try:
        noise_op = model.noise_op(h, w)
    except ValueError as exc:
        raise ModelMismatchError(f"the {role} model cannot run at {h}×{w}: {exc}") from exc
    gap = support_gap(noise_op.weights.cpu().numpy(), region)
    if gap > SUPPORT_TOLERANCE:
        raise ModelMismatchError(
            f"the {role} model has no forward noise on {gap:.0%} of {where}: it was trained for "
            f"a different band ({model.config.noise.describe()}); use a model for this band"
        )
    return noise_op


def run_chain(
    model: LoadedModel,
    plan: SamplingPlan,
    noise_op: SpectralNoise,
    x_start: torch.Tensor,
    *,
    generator: torch.Generator,
    x0_transform: X0Transform,
    progress: Progress,
    last_x0: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Ancestral sampling along ``plan`` from ``x_start`` (float32 on the model's device).
    ``last_x0`` receives the x̂₀ of the final step (after ``x0_transform``)."""
    eps_model = model.eps_predictor(noise_op)

    def on_step(info: StepInfo) -> None:
        if last_x0 is not None and info.index == info.total - 1:
            last_x0.append(info.x0_pred)
        progress.on_step(info)

    return sample_ddim(
        eps_model,
        plan,
        noise_op,
        tuple(x_start.shape),
        generator=generator,
        x_T=x_start.to(torch.float32),
        eta=ETA,
        callback=on_step,
        x0_transform=x0_transform,
    )


__all__ = [
    "ETA",
    "MEAN_ALPHA_BAR",
    "SUPPORT_TOLERANCE",
    "generator_for",
    "mask_on",
    "require_support",
    "run_chain",
    "support_gap",
]
