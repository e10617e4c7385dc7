"""Heuristic N-step ᾱ grids (linear, cosine) that schedule fitting starts from and is compared to.

Grids follow :mod:`sagd_core.schedule_design.transfer`: decreasing ``ᾱ_1 > … > ᾱ_N``. They use
the DDIM "leading" spacing: model timesteps ``t_j = ⌊j T / N⌋`` for ``j = 0 … N−1`` (0-based
indices into the T-step training ``ᾱ`` array), ``ᾱ_{j+1} = ᾱ_train[t_j]``, so ``ᾱ_1 = ᾱ_train[0]``
and ``ᾱ_N = ᾱ_train[(N−1)T/N]``. Linear: betas ``linspace(1e-4, 0.02, T)`` (unscaled, as in
DDPM/diffusers); cosine: Nichol & Dhariwal, ``s = 0.008``, betas clipped at 0.999.

When N divides T these grids equal ``Schedule.plan(N).alpha_bars[::-1]`` of the ``linear`` and
``cosine`` registry schedules (:mod:`sagd_core.schedules`); otherwise the two leading spacings
(``⌊jT/N⌋`` here, ``j⌊T/N⌋`` there) differ by a few timesteps.
"""

from __future__ import annotations

import math

import numpy as np

from sagd_core.schedule_design.fitted import ScheduleFitError


def check_steps(num_steps: int, num_train_timesteps: int) -> None:
    """Raise :class:`ScheduleFitError` unless ``1 ≤ num_steps ≤ T``."""
    if num_train_timesteps < 1:
        raise ScheduleFitError(f"T must be at least 1, got {num_train_timesteps}")
    if not 1 <= num_steps <= num_train_timesteps:
        raise ScheduleFitError(
            f"num_steps must be in [1, T={num_train_timesteps}], got {num_steps}"
        )


def leading_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """``t_j = ⌊j T / N⌋``, ``j = 0 … N−1`` (increasing; DDIM "leading" spacing)."""
    check_steps(num_steps, num_train_timesteps)
    return (np.arange(num_steps) * num_train_timesteps) // num_steps


def linear_train_alpha_bars(num_train_timesteps: int = 1000) -> np.ndarray:
    """``cumprod(1 − β)`` for betas ``linspace(1e-4, 0.02, T)``."""
    betas = np.linspace(1e-4, 0.02, num_train_timesteps, dtype=np.float64)
    return np.cumprod(1.0 - betas)


def cosine_train_alpha_bars(num_train_timesteps: int = 1000, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal cosine schedule (betas clipped at 0.999), T entries."""
    t = np.arange(num_train_timesteps + 1, dtype=np.float64) / num_train_timesteps
    f = np.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], 0.999)
    return np.cumprod(1.0 - betas)


def linear_alpha_bars(num_steps: int, T: int = 1000) -> np.ndarray:
    """N-step grid (decreasing ``ᾱ_1 … ᾱ_N``) of the linear schedule, leading spacing."""
    return linear_train_alpha_bars(T)[leading_timesteps(num_steps, T)]


def cosine_alpha_bars(num_steps: int, T: int = 1000) -> np.ndarray:
    """N-step grid (decreasing ``ᾱ_1 … ᾱ_N``) of the cosine schedule, leading spacing."""
    return cosine_train_alpha_bars(T)[leading_timesteps(num_steps, T)]


HEURISTICS = {"linear": linear_alpha_bars, "cosine": cosine_alpha_bars}
