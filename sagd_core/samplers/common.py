"""What every sampler shares: step info for callbacks, x̂₀ from ε, the optional x̂₀ transform."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sagd_core.diffusion import EpsModel
from sagd_core.schedules import SamplingPlan
from sagd_core.spectral.operator import SpectralNoise


@dataclass(frozen=True)
class StepInfo:
    """Passed to ``callback`` after each step; raising inside the callback stops sampling."""

    index: int  # 0-based step just finished
    total: int
    t: float  # model time of the step
    x: torch.Tensor  # the new state
    x0_pred: torch.Tensor  # the x̂₀ used by the step


StepCallback = Callable[[StepInfo], None]
#: ``x0_transform(x0_pred, alpha_bar)`` → replaced x̂₀ (DDNM's null-space replacement, clipping…).
X0Transform = Callable[[torch.Tensor, float], torch.Tensor]


def predict_x0(x: torch.Tensor, eps: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """``x̂₀ = (x_t − √(1−ᾱ) ε̂) / √ᾱ`` (Tweedie, DDIM eq. 12)."""
    return (x - (1.0 - alpha_bar) ** 0.5 * eps) / alpha_bar**0.5


def eps_from_x0(x: torch.Tensor, x0: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    return (x - alpha_bar**0.5 * x0) / (1.0 - alpha_bar) ** 0.5


def initial_state(
    plan: SamplingPlan,
    noise_op: SpectralNoise,
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    x_T: torch.Tensor | None,
) -> torch.Tensor:
    """The prior draw ``x_T ~ N(0, Σ_w)`` — shaped like every other draw (DESIGN.md §3.5:
    a white prior leaves energy in an omitted band that DDIM amplifies by 1/√ᾱ_T)."""
    if x_T is not None:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T shape {tuple(x_T.shape)} != requested {tuple(shape)}")
        return x_T
    return noise_op.sample(shape, generator=generator)


def denoise(
    model: EpsModel,
    x: torch.Tensor,
    t: float,
    alpha_bar: float,
    *,
    clip_denoised: bool,
    x0_transform: X0Transform | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One network call: returns ``(ε̂, x̂₀)``. If x̂₀ is clipped or transformed, ε̂ is re-derived
    from it (diffusers' ``use_clipped_model_output``) so the step stays consistent."""
    t_batch = torch.full((x.shape[0],), float(t), device=x.device, dtype=x.dtype)
    eps = model(x, t_batch)
    x0 = predict_x0(x, eps, alpha_bar)
    changed = False
    if clip_denoised:
        x0 = x0.clamp(-1.0, 1.0)
        changed = True
    if x0_transform is not None:
        x0 = x0_transform(x0, alpha_bar)
        changed = True
    if changed:
        eps = eps_from_x0(x, x0, alpha_bar)
    return eps, x0
