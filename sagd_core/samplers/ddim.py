"""DDIM (Song et al. 2021) in pixel space with shaped noise (DESIGN.md §3: in the whitened
coordinates the process is standard, so the update formulas hold unchanged; every fresh draw —
the prior and the η-noise — is shaped)."""

from __future__ import annotations

import torch

from sagd_core.diffusion import EpsModel
from sagd_core.samplers.common import (
    StepCallback,
    StepInfo,
    X0Transform,
    denoise,
    initial_state,
)
from sagd_core.schedules import SamplingPlan
from sagd_core.spectral.operator import SpectralNoise


def ddim_step(
    x: torch.Tensor,
    eps: torch.Tensor,
    x0: torch.Tensor,
    alpha_bar: float,
    alpha_bar_prev: float,
    *,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """One DDIM update (DDIM eq. 12): ``x_prev = √ᾱ' x̂₀ + √(1−ᾱ'−σ²) ε̂ + σ z``,
    ``σ = η √((1−ᾱ')/(1−ᾱ)) √(1−ᾱ/ᾱ')`` (eq. 16)."""
    variance = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_prev)
    sigma = eta * max(variance, 0.0) ** 0.5
    direction = max(1.0 - alpha_bar_prev - sigma**2, 0.0) ** 0.5 * eps
    x_prev = alpha_bar_prev**0.5 * x0 + direction
    if eta > 0:
        if noise is None:
            raise ValueError("eta > 0 needs a noise draw")
        x_prev = x_prev + sigma * noise
    return x_prev


@torch.no_grad()
def sample_ddim(
    model: EpsModel,
    plan: SamplingPlan,
    noise_op: SpectralNoise,
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    eta: float = 0.0,
    callback: StepCallback | None = None,
    x0_transform: X0Transform | None = None,
    clip_denoised: bool = False,
) -> torch.Tensor:
    """Run DDIM along ``plan`` from a shaped prior (or ``x_T``); returns the final x̂₀."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    x = initial_state(plan, noise_op, shape, generator, x_T)
    n = len(plan)
    for i in range(n):
        a, a_prev = float(plan.alpha_bars[i]), plan.alpha_bar_prev(i)
        t = float(plan.timesteps[i])
        eps, x0 = denoise(model, x, t, a, clip_denoised=clip_denoised, x0_transform=x0_transform)
        noise = noise_op.sample(x.shape, generator=generator) if eta > 0 else None
        x = ddim_step(x, eps, x0, a, a_prev, eta=eta, noise=noise)
        if callback is not None:
            callback(StepInfo(index=i, total=n, t=t, x=x, x0_pred=x0))
    return x
