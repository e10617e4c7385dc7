"""Choosing where the one-call clean read is taken (:mod:`sagd_core.restore.methods.
corruption_shaped`), on held-out *corrupted* images only, by Stein's unbiased risk estimate.

The read ``h(y)`` is exact as ``t → 0`` but amplifies the network's ε error there; larger read
times are gentler on the network and further from ``E[x | y]`` (:mod:`sagd_core.samplers.
corrupted_read`). Which wins depends on the network, so it is measured. The corruption is Gaussian
of known covariance ``C = s² Σ_w``, so Stein's lemma gives the clean-image MSE without clean images:

``E‖h(y) − x‖² = E[‖h(y) − y‖² − tr C + 2 tr(C ∇h(y))]``,

and ``tr(C ∇h)`` is estimated by a Monte Carlo divergence (Ramani, Blu & Unser 2008) along a draw
of the corruption itself, ``z = s ε_w`` (``E[zᵀ J z] = tr(J C)``):
``zᵀ (h(y + δ z) − h(y)) / δ``. Per pixel, ``tr C / n = s²`` (unit-variance weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sagd_core.restore.methods.corruption_shaped import one_call_clean_mean
from sagd_core.restore.models import LoadedModel

#: Candidate κ of :func:`choose_read_excess` (the read's own noise over the corruption's).
EXCESS_CANDIDATES = (0.03, 0.1, 0.3, 1.0)
#: Finite-difference step of the divergence, relative to the corruption draw.
SURE_STEP = 1e-3


@dataclass(frozen=True)
class ReadChoice:
    """The chosen κ and read time, and the SURE (per-pixel MSE) of every candidate."""

    excess: float
    t: int
    sure: dict[float, float]


def sure_mse(
    model: LoadedModel,
    y: torch.Tensor,
    corruption_std: float,
    *,
    excess: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    step: float = SURE_STEP,
) -> tuple[float, int]:
    """SURE of the one-call read at ``excess`` over the images ``y`` ``(N, C, H, W)``: the
    estimated per-pixel MSE against the (unseen) clean images, and the read time."""
    h, w = y.shape[-2:]
    y = y.to(dtype)
    z = corruption_std * model.noise_op(h, w).sample(tuple(y.shape), generator=generator)
    z = z.to(dtype=dtype, device=y.device)
    read, info = one_call_clean_mean(model, y, corruption_std, excess=excess, dtype=dtype)
    nudged, _ = one_call_clean_mean(model, y + step * z, corruption_std, excess=excess, dtype=dtype)
    n = y[0].numel()
    fit = (read - y).pow(2).flatten(1).sum(1)
    divergence = (z * (nudged - read)).flatten(1).sum(1) / step
    per_image = (fit + 2.0 * divergence) / n - corruption_std**2
    return float(per_image.mean()), int(info["t"])


def choose_read_excess(
    model: LoadedModel,
    held_out: torch.Tensor,
    corruption_std: float,
    *,
    candidates: Sequence[float] = EXCESS_CANDIDATES,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> ReadChoice:
    """The candidate κ whose one-call read has the lowest SURE on ``held_out`` corrupted images
    (of the size the restorations will have: the read is per size)."""
    if not candidates:
        raise ValueError("no candidate read level given")
    sure: dict[float, float] = {}
    times: dict[float, int] = {}
    for excess in candidates:
        generator = torch.Generator(device=held_out.device).manual_seed(seed)
        sure[excess], times[excess] = sure_mse(
            model, held_out, corruption_std, excess=excess, generator=generator, dtype=dtype
        )
    best = min(sure, key=lambda k: sure[k])
    return ReadChoice(excess=best, t=times[best], sure=sure)


__all__ = ["EXCESS_CANDIDATES", "ReadChoice", "choose_read_excess", "sure_mse"]
