"""Exponential moving average of model weights (used for sampling)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``θ_ema ← d θ_ema + (1 − d) θ``, with a warm-up ``d_t = min(d, (1 + t)/(10 + t))`` so early
    averages are not dominated by the random initialisation."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1.0 - d)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)
