"""The SAGD forward process and ε-prediction loss (DESIGN.md §3).

``x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε_w`` with ``ε_w = T_w ξ``; the loss is ``‖ε_θ(x_t, t) − ε_w‖²``,
returned per sample (unreduced) so the training loop owns the reduction (EDM's habit).

For omission models the network input still holds the corrupted band (scaled by √ᾱ_t) during
training but zero during sampling. :class:`EpsPredictor` can project both the input and the output
onto the trusted bands, ``P = F⁻¹ diag(1−M) F``, which removes that mismatch (DESIGN.md §3.5).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sagd_core.schedules import Schedule
from sagd_core.spectral.operator import SpectralNoise

#: ``model(x, t)`` with ``x`` of shape (B, C, H, W) and float times ``t`` of shape (B,).
EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def q_sample(
    x0: torch.Tensor,
    t: torch.Tensor,
    schedule: Schedule,
    noise_op: SpectralNoise,
    *,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) Σ_w)``; returns ``(x_t, ε_w)``.

    ``t`` holds integer training timesteps (B,). Pass ``noise`` to fix ε (tests)."""
    if noise is None:
        noise = noise_op.sample(x0.shape, generator=generator)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} != x0 shape {tuple(x0.shape)}")
    a = schedule.alpha_bars_tensor(x0.device)[t.long()]
    x_t = _expand(a.sqrt(), x0) * x0 + _expand((1 - a).sqrt(), x0) * noise
    return x_t, noise


class EpsPredictor:
    """The ε-parameterisation around a backbone that knows nothing of schedules (EDM's split).

    With ``project_trusted`` the input and output are projected on the trusted bands of the
    noise operator (identity for models without omission).
    """

    def __init__(self, model: EpsModel, noise_op: SpectralNoise, *, project_trusted: bool) -> None:
        self.model = model
        self.noise_op = noise_op
        self.project_trusted = project_trusted and noise_op.trusted is not None

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not self.project_trusted:
            return self.model(x, t)
        out = self.model(self.noise_op.project_trusted(x), t)
        return self.noise_op.project_trusted(out)


def eps_loss(
    model: EpsModel,
    x0: torch.Tensor,
    schedule: Schedule,
    noise_op: SpectralNoise,
    *,
    generator: torch.Generator | None = None,
    project_trusted: bool = False,
    t: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample ε-prediction loss, shape (B,): mean over (C, H, W) of ``(ε_θ − ε_w)²``."""
    b = x0.shape[0]
    if t is None:
        t = torch.randint(
            0, schedule.num_train_timesteps, (b,), generator=generator, device=x0.device
        )
    x_t, eps = q_sample(x0, t, schedule, noise_op, generator=generator)
    pred = EpsPredictor(model, noise_op, project_trusted=project_trusted)(x_t, t.to(x0.dtype))
    return (pred - eps).pow(2).flatten(1).mean(dim=1)
