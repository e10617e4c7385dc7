"""Schedules: registry, float64 arrays, validation, plans, JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from sagd_core.schedules import SamplingPlan, Schedule, make_schedule, schedule_names


@pytest.mark.parametrize(
    ("name", "ref_name"), [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]
)
def test_schedules_match_reference(name: str, ref_name: str) -> None:
    ours = make_schedule(name, 1000)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=ref_name)
    assert ours.alpha_bars.dtype == np.float64
    np.testing.assert_allclose(ours.alpha_bars, ref.alphas_cumprod.double().numpy(), rtol=2e-5)


def test_unknown_name_and_bad_params_raise() -> None:
    with pytest.raises(ValueError, match="valid: linear"):
        make_schedule("sigmoid")
    with pytest.raises(ValueError, match="bad parameters"):
        make_schedule("linear", 10, gamma=3)
    with pytest.raises(ValueError, match="strictly decreasing"):
        make_schedule("custom", 3, alpha_bars=[0.9, 0.95, 0.5])
    assert set(schedule_names()) >= {"linear", "cosine", "custom"}


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [1, 10, 50, 1000])
def test_timesteps_match_diffusers_spacing(spacing: str, n: int) -> None:
    sched = make_schedule("linear")
    ref = DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
    ref.set_timesteps(n)
    ts = sched.timesteps(n, spacing)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ts, ref.timesteps.numpy())
    assert np.all(np.diff(ts) < 0) and len(ts) == n


def test_plan_monotone_and_truncated_plan() -> None:
    sched = make_schedule("cosine", 200)
    plan = sched.plan(20)
    assert len(plan) == 20 and plan.final_alpha_bar == 1.0
    assert np.all(np.diff(np.append(plan.alpha_bars, 1.0)) > 0)
    short = sched.plan(10, t_max=50)
    assert short.timesteps[0] == 50 and short.timesteps[-1] == 0 and len(short) == 10
    with pytest.raises(ValueError, match="num_steps"):
        sched.plan(0)


def test_plan_from_fitted_alpha_bars_maps_to_model_time() -> None:
    sched = make_schedule("linear")
    ts = np.array([900, 500, 100, 3])
    plan = sched.plan_from_alpha_bars(sched.alpha_bars[ts])
    np.testing.assert_allclose(plan.timesteps, ts, atol=1e-6)
    np.testing.assert_allclose(plan.alpha_bars, sched.alpha_bars[ts])
    with pytest.raises(ValueError, match="distinct"):
        sched.plan_from_alpha_bars([0.5, 0.5])


def test_json_round_trips() -> None:
    for s in (
        make_schedule("linear", 100, beta_end=0.03),
        make_schedule("cosine", 50),
        make_schedule("custom", 3, alpha_bars=[0.9, 0.5, 0.1]),
    ):
        back = Schedule.from_json(s.to_json())
        np.testing.assert_array_equal(back.alpha_bars, s.alpha_bars)
        assert back.name == s.name
    plan = make_schedule("linear").plan(7)
    again = SamplingPlan.from_dict(plan.to_dict())
    np.testing.assert_array_equal(again.alpha_bars, plan.alpha_bars)


def test_alpha_bars_tensor_is_float64() -> None:
    assert make_schedule("linear", 10).alpha_bars_tensor().dtype == torch.float64
