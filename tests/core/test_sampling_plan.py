"""``SamplingPlan``, the one owner of sampling plans: every cut (a chain started below the top,
a posterior-mean read, a moved read, a fitted head) is a method of the plan, and every result is
a valid plan of the same training schedule (time strictly decreasing, ᾱ increasing, the final
level kept unless the cut says otherwise)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sagd_core.schedules import MEAN_ALPHA_BAR, SamplingPlan, Schedule, make_schedule

LINEAR = make_schedule("linear")
COSINE = make_schedule("cosine")
GRID = [0.9, 0.5, 0.2, 0.05, 0.01]


def _valid(plan: SamplingPlan, schedule: Schedule) -> None:
    """Invariants every plan keeps."""
    assert plan.schedule is schedule
    assert plan.timesteps.shape == plan.alpha_bars.shape and len(plan) >= 1
    assert np.all(np.diff(plan.timesteps) < 0), "time must strictly decrease"
    assert np.all(np.diff(np.append(plan.alpha_bars, plan.final_alpha_bar)) > 0)
    assert np.all((plan.alpha_bars > 0) & (plan.alpha_bars < 1))


def _is_suffix(part: np.ndarray, whole: np.ndarray) -> bool:
    return part.size <= whole.size and np.array_equal(part, whole[whole.size - part.size :])


def _plans() -> list[tuple[str, SamplingPlan]]:
    out: list[tuple[str, SamplingPlan]] = []
    for schedule, n in itertools.product((LINEAR, COSINE), (1, 4, 10, 50)):
        out.append((f"{schedule.name}-own-{n}", schedule.plan(n)))
    out.append(("grid", LINEAR.plan_from_alpha_bars(GRID)))
    out.append(("grid-final", LINEAR.plan_from_alpha_bars(GRID, final_alpha_bar=0.99)))
    out.append(("cosine-levels", COSINE.plan_from_alpha_bars(COSINE.alpha_bars[::97])))
    return out


PLANS = _plans()


@pytest.fixture(params=[plan for _, plan in PLANS], ids=[name for name, _ in PLANS])
def plan(request: pytest.FixtureRequest) -> SamplingPlan:
    """Plans of every origin: N spaced training steps, fitted-like grids."""
    out: SamplingPlan = request.param
    return out


def _schedule(plan: SamplingPlan) -> Schedule:
    """The plan's schedule, after checking the plan's invariants."""
    assert plan.schedule is not None
    _valid(plan, plan.schedule)
    return plan.schedule


def test_schedules_build_plans_that_know_their_schedule() -> None:
    own = LINEAR.plan(10, spacing="trailing")
    assert own.schedule is LINEAR and own.spacing == "trailing"
    grid = LINEAR.plan_from_alpha_bars(GRID)
    assert grid.schedule is LINEAR and grid.spacing is None
    spread = LINEAR.plan(10, t_max=200)
    assert spread.schedule is LINEAR and spread.spacing is None
    # Neither is serialised: a plan read back is the same levels, without them.
    back = SamplingPlan.from_dict(grid.to_dict())
    assert back.schedule is None and back.spacing is None
    assert np.array_equal(back.alpha_bars, grid.alpha_bars)
    assert "schedule" not in repr(grid)


@pytest.mark.parametrize("weight", [1.0, 0.25, 3.0])
def test_first_time_at_is_the_first_time_the_noise_reaches_a_level(weight: float) -> None:
    a = LINEAR.alpha_bars
    ratio = (1.0 - a) / a * weight
    for value in (0.0, 1e-6, 0.01, 0.5, 1.0, 10.0, float(ratio[-1])):
        t, ok = LINEAR.first_time_at(value, weight=weight)
        assert ok and ratio[t] >= value and (t == 0 or ratio[t - 1] < value)
    t, ok = LINEAR.first_time_at(float(ratio[-1]) * 1.01, weight=weight)
    assert (t, ok) == (LINEAR.num_train_timesteps - 1, False)


def test_started_at_keeps_a_valid_plan_ending_where_the_plan_ends(plan: SamplingPlan) -> None:
    schedule = _schedule(plan)
    for t in (0, 1, 37, 250, 500, 999):
        if schedule.alpha_bars[t] >= plan.final_alpha_bar:  # would start after the end
            with pytest.raises(ValueError, match="ᾱ must increase"):
                plan.started_at(t)
            continue
        cut = plan.started_at(t)
        _valid(cut, schedule)
        if len(cut) > 1 or plan.spacing is None:  # one spread step is the last one, t = 0
            assert cut.timesteps[0] == t and cut.alpha_bars[0] == schedule.alpha_bars[t]
        assert cut.final_alpha_bar == plan.final_alpha_bar and cut.spacing is None
        if plan.spacing is not None:  # N spaced steps are spread again over [0, t]
            ref = schedule.plan(len(plan), t_max=t)
            assert np.array_equal(cut.timesteps, ref.timesteps)
            assert np.array_equal(cut.alpha_bars, ref.alpha_bars)
            assert len(cut) == min(len(plan), t + 1)
        else:  # a designed plan is cut: the start, then a suffix of its own levels
            assert _is_suffix(cut.alpha_bars[1:], plan.alpha_bars)
            assert _is_suffix(cut.timesteps[1:], plan.timesteps)
            assert np.all(cut.alpha_bars[1:] > schedule.alpha_bars[t])
            assert len(cut) <= len(plan) + 1
    with pytest.raises(ValueError, match="t must be in"):
        plan.started_at(schedule.num_train_timesteps)
    with pytest.raises(ValueError, match="t must be in"):
        plan.started_at(-1)


def test_started_at_visits_a_level_equal_to_the_start_once() -> None:
    levels = LINEAR.alpha_bars[[100, 300, 500, 700]]
    plan = LINEAR.plan_from_alpha_bars(levels)
    cut = plan.started_at(300)
    assert np.array_equal(cut.alpha_bars, levels[[1, 0]])
    assert cut.timesteps[0] == 300.0
    # A spread plan is cut, not spread again (it is no longer N spaced training steps).
    spread = LINEAR.plan(10).started_at(500)
    again = spread.started_at(100)
    assert again.timesteps[0] == 100.0
    assert np.array_equal(again.timesteps[1:], spread.timesteps[spread.timesteps < 100])


def test_cuts_that_need_model_times_need_the_schedule() -> None:
    bare = SamplingPlan.from_dict(LINEAR.plan(10).to_dict())
    with pytest.raises(ValueError, match="training schedule"):
        bare.started_at(10)
    with pytest.raises(ValueError, match="training schedule"):
        bare.read_at(0.5)
    with pytest.raises(ValueError, match="training schedule"):
        bare.with_head(np.array([0.2]))
    # The others only cut what is there.
    assert len(bare.truncated()) == bare.calls_to(MEAN_ALPHA_BAR)
    assert len(bare.head()) == len(bare) - 1


@pytest.mark.parametrize("read", [1e-3, MEAN_ALPHA_BAR, 0.35, 0.999])
def test_truncated_and_calls_to_end_at_the_first_level_reaching_the_read(
    plan: SamplingPlan, read: float
) -> None:
    cut = plan.truncated(read)
    _valid(cut, _schedule(plan))
    k = plan.calls_to(read)
    assert len(cut) == k and 1 <= k <= len(plan)
    assert np.array_equal(cut.alpha_bars, plan.alpha_bars[:k])  # a prefix
    assert np.array_equal(cut.timesteps, plan.timesteps[:k])
    assert cut.final_alpha_bar == plan.alpha_bar_prev(k - 1)
    assert np.all(cut.alpha_bars[:-1] < read)
    if np.any(plan.alpha_bars >= read):
        assert cut.alpha_bars[-1] >= read
    else:  # nothing reaches it: the whole plan
        assert k == len(plan) and cut.final_alpha_bar == plan.final_alpha_bar
    assert len(plan.truncated()) == plan.calls_to(MEAN_ALPHA_BAR)


def test_head_stops_before_the_last_step(plan: SamplingPlan) -> None:
    if len(plan) == 1:
        with pytest.raises(ValueError, match="no head"):
            plan.head()
        return
    head = plan.head()
    _valid(head, _schedule(plan))
    assert np.array_equal(head.alpha_bars, plan.alpha_bars[:-1])
    assert np.array_equal(head.timesteps, plan.timesteps[:-1])
    assert head.final_alpha_bar == plan.alpha_bars[-1]


@pytest.mark.parametrize("read", [MEAN_ALPHA_BAR, 0.3, 0.6, 0.95])
def test_read_at_moves_the_read_and_keeps_the_calls(plan: SamplingPlan, read: float) -> None:
    schedule = _schedule(plan)
    moved = plan.read_at(read)
    _valid(moved, schedule)
    below = plan.alpha_bars < MEAN_ALPHA_BAR
    i = int(below.sum())
    assert np.array_equal(moved.alpha_bars[:i], plan.alpha_bars[below])  # levels below the cut
    assert moved.alpha_bars[i] == read
    assert np.isclose(moved.timesteps[i], schedule.time_for_alpha_bar(read))
    assert np.all(moved.alpha_bars[i + 1 :] > read)
    assert _is_suffix(moved.alpha_bars[i + 1 :], plan.alpha_bars)  # levels above the read
    assert moved.final_alpha_bar == plan.final_alpha_bar
    # Truncated at the cut, it reads at `read` after as many calls as the plan made.
    head = moved.truncated()
    assert head.alpha_bars[-1] == read
    if np.any(plan.alpha_bars >= MEAN_ALPHA_BAR):
        assert len(head) == plan.calls_to(MEAN_ALPHA_BAR)


def test_read_at_refuses_a_read_outside_cut_to_one() -> None:
    plan = LINEAR.plan(10)
    for bad in (0.05, 1.0, 1.5):
        with pytest.raises(ValueError, match="read level"):
            plan.read_at(bad)
    assert plan.read_at(0.05, cut=0.02).alpha_bars.max() > 0.05  # another cut


@pytest.mark.parametrize("k", [1, 3, 5])
def test_with_head_replaces_the_first_steps(k: int) -> None:
    own = LINEAR.plan(20)
    calls = own.calls_to(MEAN_ALPHA_BAR)
    levels = np.append(np.geomspace(1e-3, 0.05, k - 1), own.alpha_bars[calls - 1])
    plan = own.with_head(levels)
    _valid(plan, LINEAR)
    assert np.array_equal(plan.alpha_bars[:k], levels)
    assert np.allclose(plan.timesteps[:k], LINEAR.time_for_alpha_bar(levels))
    assert _is_suffix(plan.alpha_bars[k:], own.alpha_bars)
    assert np.all(plan.alpha_bars[k:] > levels[-1])
    assert np.array_equal(plan.alpha_bars[k:], own.alpha_bars[k:][own.alpha_bars[k:] > levels[-1]])
    assert plan.final_alpha_bar == own.final_alpha_bar
    # A head read above the own plan's later levels drops them.
    high = own.with_head(np.array([0.01, 0.9]))
    assert high.alpha_bars[1] == 0.9 and np.all(high.alpha_bars[2:] > 0.9)
    with pytest.raises(ValueError, match="head has"):
        own.with_head(np.array([]))
    with pytest.raises(ValueError, match="head has"):
        LINEAR.plan(2).with_head(np.array([0.01, 0.02, 0.03]))


def test_summary_reports_the_levels() -> None:
    plan = LINEAR.plan_from_alpha_bars(GRID, final_alpha_bar=0.999)
    assert plan.summary() == {
        "steps": 5,
        "alpha_bars": sorted(GRID),
        "final_alpha_bar": 0.999,
    }
    own = LINEAR.plan(3).summary()
    assert own["steps"] == 3 and own["final_alpha_bar"] == 1.0
    assert own["alpha_bars"] == [float(f"{a:.6g}") for a in LINEAR.plan(3).alpha_bars]
