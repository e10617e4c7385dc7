"""Ancestral DDPM (Ho et al. 2020) in pixel space with shaped step noise (DESIGN.md §3)."""

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


def ddpm_step(
    x: torch.Tensor,
    x0: torch.Tensor,
    alpha_bar: float,
    alpha_bar_prev: float,
    noise: torch.Tensor | None,
) -> torch.Tensor:
    """Posterior ``q(x_prev | x_t, x̂₀)`` (DDPM eq. 6–7), variance ``β̃`` ("fixed small"):
    mean ``= √ᾱ' β/(1−ᾱ) x̂₀ + √α (1−ᾱ')/(1−ᾱ) x_t``, ``β̃ = (1−ᾱ')/(1−ᾱ) β``,
    with ``α = ᾱ/ᾱ'`` and ``β = 1 − α``. ``noise`` is the shaped draw (None on the last step)."""
    alpha = alpha_bar / alpha_bar_prev
    beta = 1.0 - alpha
    coef_x0 = alpha_bar_prev**0.5 * beta / (1.0 - alpha_bar)
    coef_xt = alpha**0.5 * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    mean = coef_x0 * x0 + coef_xt * x
    if noise is None:
        return mean
    variance = max((1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * beta, 1e-20)
    return mean + variance**0.5 * noise


@torch.no_grad()
def sample_ddpm(
    model: EpsModel,
    plan: SamplingPlan,
    noise_op: SpectralNoise,
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    callback: StepCallback | None = None,
    x0_transform: X0Transform | None = None,
    clip_denoised: bool = False,
) -> torch.Tensor:
    """Run ancestral sampling along ``plan``; no noise is added on the final step."""
    x = initial_state(plan, noise_op, shape, generator, x_T)
    n = len(plan)
    for i in range(n):
        a, a_prev = float(plan.alpha_bars[i]), plan.alpha_bar_prev(i)
        t = float(plan.timesteps[i])
        _, x0 = denoise(model, x, t, a, clip_denoised=clip_denoised, x0_transform=x0_transform)
        last = i == n - 1
        noise = None if last else noise_op.sample(x.shape, generator=generator)
        x = ddpm_step(x, x0, a, a_prev, noise)
        if callback is not None:
            callback(StepInfo(index=i, total=n, t=t, x=x, x0_pred=x0))
    return x
