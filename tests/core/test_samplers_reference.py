"""With w ≡ 1 our forward process and samplers equal diffusers' DDPM/DDIM (DESIGN.md §3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from sagd_core.diffusion import q_sample
from sagd_core.samplers import ddim_step, ddpm_step, sample_ddim, sample_ddpm
from sagd_core.samplers.common import predict_x0
from sagd_core.schedules import make_schedule
from sagd_core.spectral import NoiseSpec, band_mask, half_grid_multiplicity, parse_band_spec
from sagd_core.spectral.operator import SpectralNoise

SHAPE = (2, 3, 8, 8)


def toy_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A deterministic, nonlinear stand-in for a trained ε-network."""
    return torch.tanh(0.7 * x + 0.001 * t.reshape(-1, 1, 1, 1)) * 0.9


def reference(kind: str, n: int) -> DDPMScheduler | DDIMScheduler:
    sched = make_schedule("linear")
    common = {
        "num_train_timesteps": 1000,
        "trained_betas": sched.betas.tolist(),
        "clip_sample": False,
    }
    ref: DDPMScheduler | DDIMScheduler
    if kind == "ddim":
        ref = DDIMScheduler(**common, set_alpha_to_one=True)
    else:
        ref = DDPMScheduler(**common, variance_type="fixed_small")
    ref.set_timesteps(n)
    return ref


def one_step_inputs(
    kind: str, step_index: int, *, seed: int
) -> tuple[DDPMScheduler | DDIMScheduler, torch.Tensor, int, torch.Tensor, float, float]:
    """Step ``step_index`` of 10: the reference scheduler, x, t, the toy ε, ᾱ and the next ᾱ."""
    ref = reference(kind, 10)
    plan = make_schedule("linear").plan(10)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))
    t = int(ref.timesteps[step_index])
    eps = toy_model(x, torch.full((2,), float(t)))
    return ref, x, t, eps, float(plan.alpha_bars[step_index]), plan.alpha_bar_prev(step_index)


def test_q_sample_matches_add_noise() -> None:
    sched = make_schedule("linear")
    ref = reference("ddpm", 10)
    x0 = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 999])
    ours, eps = q_sample(x0, t, sched, SpectralNoise.white(8, 8), noise=noise)
    theirs = ref.add_noise(x0, noise, t)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    assert eps is noise


@pytest.mark.parametrize("step_index", [0, 5, 9])
def test_one_ddim_step_matches_reference(step_index: int) -> None:
    ref, x, t, eps, a, a_prev = one_step_inputs("ddim", step_index, seed=2)
    ours = ddim_step(x, eps, predict_x0(x, eps, a), a, a_prev)
    theirs = ref.step(eps, t, x, eta=0.0).prev_sample
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("step_index", [0, 5, 9])
def test_one_ddpm_step_matches_reference(step_index: int) -> None:
    ref, x, t, eps, a, a_prev = one_step_inputs("ddpm", step_index, seed=3)
    last = step_index == 9
    noise = None if last else torch.randn(SHAPE, generator=torch.Generator().manual_seed(4))
    ours = ddpm_step(x, predict_x0(x, eps, a), a, a_prev, noise)
    theirs = ref.step(eps, t, x, generator=torch.Generator().manual_seed(4)).prev_sample
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["ddim", "ddpm"])
def test_whole_white_sampler_matches_reference_loop(kind: str) -> None:
    n = 12
    ref = reference(kind, n)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(SHAPE, generator=g)
    for t in ref.timesteps:
        eps = toy_model(x, torch.full((2,), float(t)))
        x = ref.step(eps, t, x, generator=g).prev_sample
    plan = make_schedule("linear").plan(n)
    sampler = sample_ddim if kind == "ddim" else sample_ddpm
    ours = sampler(
        toy_model,
        plan,
        SpectralNoise.white(8, 8),
        SHAPE,
        generator=torch.Generator().manual_seed(5),
    )
    # 12 chained float32 steps on values of magnitude ~30: compare relatively
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sampler", [sample_ddim, sample_ddpm])
def test_omission_sampler_keeps_band_empty_and_reports_progress(sampler: object) -> None:
    band = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.2, "high": 0.35}]})
    op = SpectralNoise(NoiseSpec(omit=band), 16, 16, dtype=torch.float64)

    def band_free_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return op.project_trusted(0.5 * x)  # an ideal omission model outputs 0 in the band

    seen: list[int] = []
    out = sampler(
        band_free_model,
        make_schedule("linear").plan(20),
        op,
        (2, 1, 16, 16),  # type: ignore[operator]
        generator=torch.Generator().manual_seed(0),
        callback=lambda info: seen.append(info.index),
    )
    assert seen == list(range(20))
    power = (torch.fft.rfft2(out, norm="ortho").abs() ** 2).mean(dim=(0, 1)).numpy()
    mask, mult = band_mask(band, 16, 16), half_grid_multiplicity(16, 16)
    assert (power * mask * mult).sum() / (power * mult).sum() < 1e-12


def test_callback_exception_stops_sampling() -> None:
    class Stop(Exception):
        pass

    calls: list[int] = []

    def cb(info: object) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise Stop

    with pytest.raises(Stop):
        sample_ddim(
            toy_model,
            make_schedule("linear").plan(10),
            SpectralNoise.white(8, 8),
            SHAPE,
            callback=cb,
        )
    assert len(calls) == 3


def test_x0_transform_is_applied_each_step() -> None:
    target = torch.zeros(SHAPE)
    out = sample_ddim(
        toy_model,
        make_schedule("linear").plan(5),
        SpectralNoise.white(8, 8),
        SHAPE,
        generator=torch.Generator().manual_seed(0),
        x0_transform=lambda x0, a: target,
    )
    # the last step lands on x̂₀ exactly (ᾱ_prev = 1)
    assert np.allclose(out.numpy(), 0.0, atol=1e-6)
