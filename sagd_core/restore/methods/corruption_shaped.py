"""One-call clean restoration with a model trained on the corrupted images with forward noise
shaped like the corruption (DESIGN.md §4.3, last point; the math in :mod:`sagd_core.samplers.
corrupted_read`).

For band-limited noise of pixel std ``s`` (flat in the band) a **band model** (``w = M``) trained
on the corrupted images is such a model: called once at ``z = √ᾱ y`` — the band of the observation
kept, not discarded as the band fill does — and read with ``ρ``, it returns the clean posterior
mean ``E[x | y]`` from the whole observation. The trusted bands come back exactly (the optimal ε
has no component there and the network's is removed).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from sagd_core.restore.models import LoadedModel
from sagd_core.samplers.corrupted_read import (
    READ_EXCESS,
    clean_alpha_bar,
    clean_read,
    noise_share,
    read_time,
)


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


__all__ = ["one_call_clean_mean"]
