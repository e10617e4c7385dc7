"""Noise schedules ``ᾱ_t`` (DESIGN.md §3: schedules are unchanged by SAGD).

A named registry (unknown names raise), arrays precomputed in float64 and validated, JSON round
trip, and :class:`SamplingPlan` — the descending list of (model time, ᾱ) pairs an N-step sampler
visits, from training timesteps (``leading``/``trailing``/``linspace`` spacing as in diffusers) or
from a fitted ᾱ grid (schedule design, DESIGN.md §5).

:class:`SamplingPlan` is the one owner of plans: only :class:`Schedule` builds them, and every
cut or change of a plan is one of its methods (:meth:`~SamplingPlan.started_at` for a chain that
starts below the top, :meth:`~SamplingPlan.truncated` and :meth:`~SamplingPlan.head` for a
posterior-mean read, :meth:`~SamplingPlan.read_at` and :meth:`~SamplingPlan.with_head` for
designed fill plans), so no caller slices a plan by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

Spacing = Literal["leading", "trailing", "linspace"]


def _linear(
    num_train_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> np.ndarray:
    """DDPM's linear betas (Ho et al. 2020), ``ᾱ_t = Π (1 − β_s)``."""
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(
            f"linear schedule needs 0 < beta_start ≤ beta_end < 1, got {beta_start}, {beta_end}"
        )
    betas = np.linspace(beta_start, beta_end, num_train_timesteps, dtype=np.float64)
    return np.cumprod(1.0 - betas)


def _cosine(num_train_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Improved DDPM's cosine schedule (Nichol & Dhariwal 2021, eq. 17), betas capped at 0.999."""

    def f(t: np.ndarray) -> np.ndarray:
        return np.cos((t / num_train_timesteps + s) / (1 + s) * math.pi / 2) ** 2

    t = np.arange(num_train_timesteps + 1, dtype=np.float64)
    betas = np.minimum(1.0 - f(t[1:]) / f(t[:-1]), max_beta)
    return np.cumprod(1.0 - betas)


def _custom(num_train_timesteps: int, alpha_bars: list[float] | None = None) -> np.ndarray:
    if alpha_bars is None:
        raise ValueError("schedule 'custom' needs alpha_bars")
    arr = np.asarray(alpha_bars, dtype=np.float64)
    if arr.shape != (num_train_timesteps,):
        raise ValueError(
            f"custom alpha_bars must have length {num_train_timesteps}, got {arr.shape}"
        )
    return arr


_REGISTRY: dict[str, Callable[..., np.ndarray]] = {
    "linear": _linear,
    "cosine": _cosine,
    "custom": _custom,
}


def schedule_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


@dataclass(frozen=True, eq=False)
class Schedule:
    """A training schedule: ``alpha_bars[t]`` for ``t = 0 … T−1`` (float64, strictly decreasing)."""

    name: str
    alpha_bars: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = self.alpha_bars
        if a.ndim != 1 or a.size < 2:
            raise ValueError("alpha_bars must be a 1-D array with at least 2 entries")
        if not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a >= 1):
            raise ValueError("alpha_bars must lie in (0, 1)")
        if np.any(np.diff(a) >= 0):
            raise ValueError("alpha_bars must be strictly decreasing")
        a.setflags(write=False)

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alpha_bars.size)

    @property
    def betas(self) -> np.ndarray:
        prev = np.concatenate([[1.0], self.alpha_bars[:-1]])
        return 1.0 - self.alpha_bars / prev

    def alpha_bars_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.tensor(self.alpha_bars, dtype=torch.float64, device=device)

    # -- sampling plans ---------------------------------------------------------------------
    def timesteps(self, num_steps: int, spacing: Spacing = "leading") -> np.ndarray:
        """Descending integer training timesteps an N-step sampler visits (diffusers' spacings)."""
        T = self.num_train_timesteps
        if not 1 <= num_steps <= T:
            raise ValueError(f"num_steps must be in [1, {T}], got {num_steps}")
        ts: np.ndarray
        if spacing == "leading":
            ts = (np.arange(num_steps) * (T // num_steps)).round()[::-1]
        elif spacing == "trailing":
            ts = np.round(np.arange(T, 0, -T / num_steps)) - 1
        elif spacing == "linspace":
            ts = np.linspace(0, T - 1, num_steps).round()[::-1]
        else:
            raise ValueError(f"unknown spacing {spacing!r}")
        return ts.astype(np.int64).copy()

    def plan(
        self, num_steps: int, *, spacing: Spacing = "leading", t_max: int | None = None
    ) -> SamplingPlan:
        """The plan for an N-step sampler. ``t_max`` starts below the top (denoising, SDEdit):
        N timesteps spread evenly over ``[0, t_max]`` (what :meth:`SamplingPlan.started_at`
        does with a plan of this schedule)."""
        if t_max is not None:
            if not 0 <= t_max < self.num_train_timesteps:
                raise ValueError(f"t_max must be in [0, {self.num_train_timesteps - 1}]")
            n = min(num_steps, t_max + 1)
            ts = np.unique(np.linspace(0, t_max, n).round().astype(np.int64))[::-1].copy()
            return SamplingPlan(
                timesteps=ts.astype(np.float64),
                alpha_bars=self.alpha_bars[ts].copy(),
                schedule=self,
            )
        ts = self.timesteps(num_steps, spacing)
        return SamplingPlan(
            timesteps=ts.astype(np.float64),
            alpha_bars=self.alpha_bars[ts].copy(),
            schedule=self,
            spacing=spacing,
        )

    def first_time_at(self, noise_to_signal: float, *, weight: float = 1.0) -> tuple[int, bool]:
        """The first training time ``t`` whose noise-to-signal ratio ``(1−ᾱ_t)/ᾱ_t``, times
        ``weight`` (a frequency's noise power ``w²``), reaches ``noise_to_signal``, and whether
        one does (else the last time, ``T − 1``: the level exceeds the schedule's range).

        Where a chain starts that must drown a given noise or corruption level (the SAGD
        denoiser, SDEdit); cut a plan there with :meth:`SamplingPlan.started_at`."""
        a = self.alpha_bars
        level = (1.0 - a) / a * weight  # increasing in t
        idx = int(np.searchsorted(level, noise_to_signal, side="left"))
        if idx >= a.size:
            return a.size - 1, False
        return idx, True

    def time_for_alpha_bar(self, alpha_bar: np.ndarray | float) -> np.ndarray:
        """Continuous model time whose ᾱ equals the given value (interpolated in log-SNR)."""
        log_snr = np.log(self.alpha_bars) - np.log1p(-self.alpha_bars)  # decreasing in t
        a = np.clip(np.asarray(alpha_bar, dtype=np.float64), 1e-12, 1 - 1e-12)
        target = np.log(a) - np.log1p(-a)
        t = np.arange(self.num_train_timesteps, dtype=np.float64)
        return np.interp(-target, -log_snr, t)

    def plan_from_alpha_bars(
        self, alpha_bars: np.ndarray | list[float], final_alpha_bar: float = 1.0
    ) -> SamplingPlan:
        """A plan visiting a fitted ᾱ grid (any order; sampled from the smallest ᾱ upwards) and
        ending at ``final_alpha_bar`` (ᾱ_0 of DESIGN.md §5)."""
        a = np.sort(np.asarray(alpha_bars, dtype=np.float64))
        if a.size < 1 or np.any(a <= 0) or np.any(a >= 1) or np.any(np.diff(a) <= 0):
            raise ValueError("a fitted grid needs distinct ᾱ values in (0, 1)")
        return SamplingPlan(
            timesteps=self.time_for_alpha_bar(a),
            alpha_bars=a.copy(),
            final_alpha_bar=float(final_alpha_bar),
            schedule=self,
        )

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "num_train_timesteps": self.num_train_timesteps,
            "params": dict(self.params),
        }
        if self.name == "custom":
            out["params"]["alpha_bars"] = self.alpha_bars.tolist()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        try:
            name = data["name"]
            T = int(data["num_train_timesteps"])
            params = dict(data.get("params", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid schedule description: {exc}") from exc
        return make_schedule(name, T, **params)

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        return cls.from_dict(json.loads(text))


#: Where posterior-mean estimates are read off restoration chains (Rao–Blackwellisation,
#: :mod:`sagd_core.restore.methods.sagd` point 2): the first step whose ᾱ reaches this.
MEAN_ALPHA_BAR = 0.1


@dataclass(frozen=True, eq=False)
class SamplingPlan:
    """Where a sampler goes: model times and ᾱ, descending in time, then ``final_alpha_bar``.

    Step ``i`` moves from ``alpha_bars[i]`` to ``alpha_bars[i+1]`` (or ``final_alpha_bar`` after
    the last entry; 1.0 = diffusers' ``set_alpha_to_one``).

    ``schedule`` is the training schedule whose model times these are (set by
    :meth:`Schedule.plan` and :meth:`Schedule.plan_from_alpha_bars`; the cuts that need model
    times for new levels require it). ``spacing`` is set only on a plan of N spaced training
    steps (:meth:`Schedule.plan` without ``t_max``): such a plan starts below the top by
    spreading its N steps again (:meth:`started_at`); any other plan (a designed grid, or the
    result of a cut) is cut there. Neither is serialised.
    """

    timesteps: np.ndarray
    alpha_bars: np.ndarray
    final_alpha_bar: float = 1.0
    schedule: Schedule | None = field(default=None, repr=False)
    spacing: Spacing | None = None

    def __post_init__(self) -> None:
        if self.timesteps.shape != self.alpha_bars.shape or self.alpha_bars.ndim != 1:
            raise ValueError("timesteps and alpha_bars must be 1-D arrays of the same length")
        if self.alpha_bars.size == 0:
            raise ValueError("a sampling plan needs at least one step")
        full = np.append(self.alpha_bars, self.final_alpha_bar)
        if np.any(np.diff(full) <= 0):
            raise ValueError("ᾱ must increase along a sampling plan (time decreasing)")

    def __len__(self) -> int:
        return int(self.alpha_bars.size)

    def alpha_bar_prev(self, i: int) -> float:
        return float(self.alpha_bars[i + 1]) if i + 1 < len(self) else float(self.final_alpha_bar)

    # -- reading a plan -----------------------------------------------------------------------
    def calls_to(self, level: float) -> int:
        """Network calls of this plan up to and including its first step with ``ᾱ ≥ level``
        (all of them when none reaches it): the length of :meth:`truncated` at ``level``."""
        reached = np.nonzero(self.alpha_bars >= level)[0]
        return int(reached[0]) + 1 if reached.size else len(self)

    def summary(self) -> dict[str, Any]:
        """The levels the plan visits, for reports (ᾱ rounded to 6 significant digits)."""
        return {
            "steps": len(self),
            "alpha_bars": [float(f"{a:.6g}") for a in self.alpha_bars],
            "final_alpha_bar": float(self.final_alpha_bar),
        }

    # -- cuts: the only code that builds a plan from another plan -----------------------------
    def started_at(self, t: int) -> SamplingPlan:
        """This plan for a chain that starts at training time ``t`` (below the top: the SAGD
        denoiser, SDEdit) and ends where this plan ends.

        A plan of N spaced training steps (``spacing`` set) spreads its N steps again over
        ``[0, t]`` (:meth:`Schedule.plan` with ``t_max``). Any other plan is *cut*: the start
        level ``(t, ᾱ_t)``, then this plan's levels with more ᾱ (less noise) than ``ᾱ_t``, so it
        makes fewer steps; ``final_alpha_bar`` is kept (a cut plan's levels after its start are
        a suffix of this plan's)."""
        schedule = self._require_schedule("started_at")
        if not 0 <= t < schedule.num_train_timesteps:
            raise ValueError(f"t must be in [0, {schedule.num_train_timesteps - 1}], got {t}")
        if self.spacing is not None:
            return schedule.plan(len(self), t_max=t)
        alpha_bar = float(schedule.alpha_bars[t])
        keep = self.alpha_bars > alpha_bar * (1.0 + 1e-9)  # a level equal to the start: once
        return self._derived(
            np.concatenate([[float(t)], self.timesteps[keep]]),
            np.concatenate([[alpha_bar], self.alpha_bars[keep]]),
            self.final_alpha_bar,
        )

    def truncated(self, read: float = MEAN_ALPHA_BAR) -> SamplingPlan:
        """This plan cut after its first step with ``ᾱ ≥ read`` (whole when none reaches it),
        ending at the ᾱ that step moved to: the chain of a posterior-mean read, whose x̂₀ at
        that step, averaged over chains, estimates ``E[x₀ | y] = E[E[x₀ | x_t] | y]``."""
        last = self.calls_to(read) - 1
        return self._derived(
            self.timesteps[: last + 1].copy(),
            self.alpha_bars[: last + 1].copy(),
            self.alpha_bar_prev(last),
        )

    def head(self) -> SamplingPlan:
        """This plan without its last step, ending at that step's ᾱ: it brings a chain to the
        state the last step starts from (where a posterior-mean read is taken)."""
        if len(self) < 2:
            raise ValueError("a one-step plan has no head")
        return self._derived(
            self.timesteps[:-1].copy(), self.alpha_bars[:-1].copy(), float(self.alpha_bars[-1])
        )

    def read_at(self, read: float, *, cut: float = MEAN_ALPHA_BAR) -> SamplingPlan:
        """This plan read at ``read`` (a posterior-mean read above the ``cut``): its levels below
        ``cut``, then the level ``read`` (model time from the schedule), then its levels above
        ``read``. Truncated at the cut, it makes as many network calls as this plan does.
        Raises ``ValueError`` unless ``cut ≤ read < 1``."""
        if not cut <= read < 1:
            raise ValueError(f"the read level must lie in [{cut}, 1), got {read}")
        schedule = self._require_schedule("read_at")
        below = self.alpha_bars < cut
        above = self.alpha_bars > read * (1 + 1e-9)
        return self._derived(
            np.concatenate(
                [
                    self.timesteps[below],
                    schedule.time_for_alpha_bar(np.array([read])),
                    self.timesteps[above],
                ]
            ),
            np.concatenate([self.alpha_bars[below], [read], self.alpha_bars[above]]),
            self.final_alpha_bar,
        )

    def with_head(self, levels: np.ndarray) -> SamplingPlan:
        """This plan with its first ``K = len(levels)`` steps replaced by the increasing
        ``levels`` (model times from the schedule; e.g. a fitted fill chain ending at its read),
        then this plan's later levels that lie above ``levels[-1]``."""
        head = np.asarray(levels, dtype=np.float64)
        if head.ndim != 1 or not 1 <= head.size <= len(self):
            raise ValueError(f"a plan's head has 1 to {len(self)} levels, got shape {head.shape}")
        schedule = self._require_schedule("with_head")
        k = head.size
        tail = self.alpha_bars[k:]
        keep = tail > head[-1] * (1 + 1e-9)
        return self._derived(
            np.concatenate([schedule.time_for_alpha_bar(head), self.timesteps[k:][keep]]),
            np.concatenate([head, tail[keep]]),
            self.final_alpha_bar,
        )

    def _derived(
        self, timesteps: np.ndarray, alpha_bars: np.ndarray, final_alpha_bar: float
    ) -> SamplingPlan:
        """A plan cut from this one: same schedule, no spacing (its steps are no longer N spaced
        training steps, so a later :meth:`started_at` cuts it)."""
        return SamplingPlan(
            timesteps=timesteps,
            alpha_bars=alpha_bars,
            final_alpha_bar=final_alpha_bar,
            schedule=self.schedule,
        )

    def _require_schedule(self, what: str) -> Schedule:
        if self.schedule is None:
            raise ValueError(
                f"{what} needs the plan's training schedule (plans from Schedule.plan or "
                "Schedule.plan_from_alpha_bars carry it; plans read from JSON do not)"
            )
        return self.schedule

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "timesteps": self.timesteps.tolist(),
            "alpha_bars": self.alpha_bars.tolist(),
            "final_alpha_bar": self.final_alpha_bar,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingPlan:
        return cls(
            timesteps=np.asarray(data["timesteps"], dtype=np.float64),
            alpha_bars=np.asarray(data["alpha_bars"], dtype=np.float64),
            final_alpha_bar=float(data.get("final_alpha_bar", 1.0)),
        )


def make_schedule(name: str, num_train_timesteps: int = 1000, **params: Any) -> Schedule:
    """Build a schedule by registry name; unknown names raise with the valid ones listed."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(_REGISTRY)}")
    if not 2 <= num_train_timesteps <= 100_000:
        raise ValueError(f"num_train_timesteps must be in [2, 100000], got {num_train_timesteps}")
    try:
        alpha_bars = _REGISTRY[name](num_train_timesteps, **params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for schedule {name!r}: {exc}") from exc
    stored = {k: v for k, v in params.items() if k != "alpha_bars"}
    return Schedule(name=name, alpha_bars=alpha_bars, params=stored)
