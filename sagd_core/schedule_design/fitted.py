"""The result of a schedule fit and its JSON document (``sagd schedule fit -o schedule.json``).

Grid convention of :mod:`sagd_core.schedule_design.transfer`: ``alpha_bars`` is decreasing
``ᾱ_1 > … > ᾱ_N`` and ``final_alpha_bar`` is ``ᾱ_0`` (DESIGN.md §5). A sampler visits the grid in
reverse order; :func:`sagd_core.schedule_design.plans.plan_for_fitted` turns it into a
:class:`~sagd_core.schedules.SamplingPlan`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sagd_core.schedule_design.documents import DocumentKind
from sagd_core.schedule_design.losses import LOSSES
from sagd_core.schedule_design.transfer import SAMPLERS, validate_alpha_bars

FITTED_FORMAT = "sagd.fitted_schedule"
FITTED_VERSION = 1
_MAX_DOCUMENT_CHARS = 10_000_000


#: The required scalar fields of a fitted schedule document, in order, and their types.
_SCALAR_FIELDS: dict[str, Callable[[Any], Any]] = {
    "final_alpha_bar": float,
    "sampler": str,
    "loss": str,
    "init": str,
    "num_train_timesteps": int,
    "prior_variance": float,
    "loss_init": float,
    "loss_final": float,
    "method": str,
    "success": bool,
    "iterations": int,
    "margin": float,
}


class ScheduleFitError(ValueError):
    """Bad settings for schedule fitting, or a malformed saved fitted schedule."""


_DOCUMENT = DocumentKind(FITTED_FORMAT, FITTED_VERSION, "fitted schedule", ScheduleFitError)


@dataclass(frozen=True, eq=False)
class FittedSchedule:
    """An optimised grid ``alpha_bars`` (decreasing ᾱ_1 … ᾱ_N) and how it was obtained."""

    alpha_bars: np.ndarray
    final_alpha_bar: float
    sampler: str
    loss: str
    init: str
    num_train_timesteps: int
    prior_variance: float
    loss_init: float
    loss_final: float
    method: str
    success: bool
    iterations: int
    margin: float
    message: str = ""
    #: Free-form, JSON-able description of what was fitted (data, noise, image size, …).
    context: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ab = validate_alpha_bars(self.alpha_bars, self.final_alpha_bar).copy()
        ab.setflags(write=False)
        object.__setattr__(self, "alpha_bars", ab)

    @property
    def num_steps(self) -> int:
        return int(self.alpha_bars.size)

    @property
    def log_snr(self) -> np.ndarray:
        """``log(ᾱ/(1−ᾱ))`` of the grid (decreasing)."""
        return np.log(self.alpha_bars) - np.log1p(-self.alpha_bars)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FITTED_FORMAT,
            "version": FITTED_VERSION,
            "alpha_bars": self.alpha_bars.tolist(),
            "final_alpha_bar": self.final_alpha_bar,
            "sampler": self.sampler,
            "loss": self.loss,
            "init": self.init,
            "num_train_timesteps": self.num_train_timesteps,
            "prior_variance": self.prior_variance,
            "loss_init": self.loss_init,
            "loss_final": self.loss_final,
            "method": self.method,
            "success": self.success,
            "iterations": self.iterations,
            "margin": self.margin,
            "message": self.message,
            "context": self.context,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> FittedSchedule:
        data = _DOCUMENT.check(data)
        try:
            fitted = cls(
                alpha_bars=np.asarray(data["alpha_bars"], dtype=np.float64),
                **{name: convert(data[name]) for name, convert in _SCALAR_FIELDS.items()},
                message=str(data.get("message", "")),
                context=_context(data.get("context", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScheduleFitError(f"malformed fitted schedule: {exc}") from exc
        if fitted.sampler not in SAMPLERS or fitted.loss not in LOSSES:
            raise ScheduleFitError(f"unknown sampler/loss {fitted.sampler!r}/{fitted.loss!r}")
        return fitted

    @classmethod
    def from_json(cls, text: str | bytes) -> FittedSchedule:
        if len(text) > _MAX_DOCUMENT_CHARS:
            raise ScheduleFitError(f"fitted schedule document is larger than {_MAX_DOCUMENT_CHARS}")
        return cls.from_dict(_DOCUMENT.parse(text))


def _context(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScheduleFitError("'context' of a fitted schedule must be a JSON object")
    return dict(value)
