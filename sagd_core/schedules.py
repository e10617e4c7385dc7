"""Noise schedules ``ᾱ_t`` (SAGD.md §3: schedules are unchanged by SAGD).

A named registry (unknown names raise), arrays precomputed in float64 and validated, JSON round
trip, and :class:`SamplingPlan` — the descending list of (model time, ᾱ) pairs an N-step sampler
visits, from training timesteps (``leading``/``trailing``/``linspace`` spacing as in diffusers) or
from a fitted ᾱ grid (schedule design, SAGD.md §5).
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
        N timesteps spread evenly over ``[0, t_max]``."""
        if t_max is not None:
            if not 0 <= t_max < self.num_train_timesteps:
                raise ValueError(f"t_max must be in [0, {self.num_train_timesteps - 1}]")
            n = min(num_steps, t_max + 1)
            ts = np.unique(np.linspace(0, t_max, n).round().astype(np.int64))[::-1].copy()
        else:
            ts = self.timesteps(num_steps, spacing)
        return SamplingPlan(timesteps=ts.astype(np.float64), alpha_bars=self.alpha_bars[ts].copy())

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
        ending at ``final_alpha_bar`` (ᾱ_0 of SAGD.md §5)."""
        a = np.sort(np.asarray(alpha_bars, dtype=np.float64))
        if a.size < 1 or np.any(a <= 0) or np.any(a >= 1) or np.any(np.diff(a) <= 0):
            raise ValueError("a fitted grid needs distinct ᾱ values in (0, 1)")
        return SamplingPlan(
            timesteps=self.time_for_alpha_bar(a),
            alpha_bars=a.copy(),
            final_alpha_bar=float(final_alpha_bar),
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
    """

    timesteps: np.ndarray
    alpha_bars: np.ndarray
    final_alpha_bar: float = 1.0

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
