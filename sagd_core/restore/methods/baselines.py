"""Restoration baselines that are not part of the service's methods (``sagd bench restore``).

``sdedit``: SDEdit (Meng et al. 2021) with an isotropic model trained on the *corrupted* images:
noise the input with white noise up to the level of the corruption, then run the reverse chain.
The start time is the first ``t`` whose per-bin noise variance ``(1−ᾱ)/ᾱ`` reaches the mean
in-band power of the input, so the corruption is drowned. With no declared input noise the
out-of-band part is put back afterwards (``x̂ = F⁻¹[(1−M) F y + M F x̃]``) so the comparison is
about the band only.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sagd_core.restore.fourier import merge_bands, rfft2
from sagd_core.restore.methods.chains import generator_for, mask_on
from sagd_core.restore.models import LoadedModel
from sagd_core.restore.progress import Progress
from sagd_core.samplers import sample_ddim
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.grid import half_grid_multiplicity


def sdedit(
    model: LoadedModel,
    y: np.ndarray,
    spec: BandSpec,
    *,
    steps: int = 50,
    seed: int = 0,
    samples: int = 1,
    input_noise_std: float = 0.0,
) -> np.ndarray:
    """Restore ``y`` ``(C, H, W)`` (model range); returns the mean of ``samples`` outputs."""
    c, h, w = y.shape
    dev = model.device
    y_t = torch.as_tensor(y, dtype=torch.float64, device=dev)[None]
    mask = mask_on(spec, h, w, dev)
    mult = torch.as_tensor(half_grid_multiplicity(h, w), device=dev)
    power = (rfft2(y_t).abs() ** 2 * mask * mult).sum() / ((mask * mult).sum() * c)
    level = max(float(power), input_noise_std**2)
    t_star, _ = model.schedule.first_time_at(level)  # the last time when none drowns it
    plan = model.schedule.plan(steps).started_at(t_star)
    noise_op = model.noise_op(h, w)
    gen = generator_for(dev, seed)
    shape = (samples, c, h, w)
    a0 = float(plan.alpha_bars[0])
    x_start = math.sqrt(a0) * y_t.expand(shape).float() + math.sqrt(1 - a0) * noise_op.sample(
        shape, generator=gen
    )
    out = sample_ddim(
        model.eps_predictor(noise_op),
        plan,
        noise_op,
        shape,
        generator=gen,
        x_T=x_start,
        eta=1.0,
        callback=Progress(len(plan), None).on_step,
    )
    out64 = out.to(torch.float64)
    if input_noise_std == 0.0:
        out64 = merge_bands(y_t.expand(shape), out64, mask)
    result: np.ndarray = out64.mean(dim=0).cpu().numpy()
    return result


__all__ = ["sdedit"]
