"""The restore contract: every parameter of one restoration, declared once (no torch import).

``RestoreRequest`` is what the CLI, the REST service (its forms and job records) and the worker
build and pass to :func:`sagd_core.restore.restore`; ``RestoreSchedule`` names the ᾱ levels the
restoration chains visit (:mod:`sagd_core.restore.plans` turns it into sampling plans).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sagd_core.spectral.bands import BandSpec

if TYPE_CHECKING:
    from sagd_core.schedule_design.fitted import FittedSchedule

Method = Literal["auto", "notch", "classical", "ddnm", "sagd"]
METHODS: tuple[Method, ...] = ("auto", "notch", "classical", "ddnm", "sagd")
#: Methods that need no model. ``notch`` and ``classical`` run on numpy alone and never import
#: torch; so does ``auto`` on bands the classical tier fits (sinusoids, stripes) without declared
#: broadband noise. Otherwise ``auto`` runs the shipped band reader (torch, no model of the
#: user's) or, on a noise-like band, a band model it is given that was trained on noise of its
#: band's shape, under the per-image guard (:mod:`sagd_core.restore.auto`).
MODEL_FREE_METHODS: tuple[Method, ...] = ("auto", "notch", "classical")
#: One line per method, for help texts, the web page and the docs.
METHOD_SUMMARIES: dict[Method, str] = {
    "auto": "the classical tier; on noise-like bands (and with declared broadband noise, after "
    "the classical fits) a learned one-call read (the shipped band reader, or a band model of "
    "yours trained on its band's noise) wherever recorrupted copies of the image show it wins",
    "notch": "delete the band (the floor every other method must beat)",
    "classical": "per region: fit and subtract a sinusoid, subtract a stripe profile, or "
    "denoise band-limited noise with its noise spectrum (patch-DCT shrinkage and Wiener filters "
    "blended by SURE); falls back to the notch where a probe band says so",
    "ddnm": "fill the band by null-space sampling with a model trained on clean images",
    "sagd": "fill the band with a band model trained on corrupted images (SAGD)",
}
Rolloff = Literal["hard", "gaussian", "butterworth"]

ScheduleKind = Literal["model", "linear", "cosine", "fit", "grid"]
SCHEDULE_KINDS: tuple[ScheduleKind, ...] = ("model", "linear", "cosine", "fit", "grid")
#: The sampler restoration chains use (ancestral, DDIM η = 1 = DDPM posterior steps).
RESTORE_SAMPLER: Literal["ddpm"] = "ddpm"


class RestoreSchedule(BaseModel):
    """Which ᾱ levels the restoration chains visit (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: ScheduleKind = "model"
    alpha_bars: tuple[float, ...] | None = Field(
        default=None, max_length=1000, description="kind 'grid': decreasing ᾱ_1 > … > ᾱ_N in (0, 1)"
    )
    final_alpha_bar: float = Field(
        default=1.0, gt=0.0, le=1.0, description="kind 'grid': ᾱ_0 the last step moves to"
    )
    loss: Literal["w2", "kl"] = Field(default="w2", description="kind 'fit': the fitted loss")
    read_alpha_bar: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="band models: where the posterior-mean fill reads x̂₀ (at least the cut "
        "0.1; default: the first level at or above the cut)",
    )

    @model_validator(mode="before")
    @classmethod
    def _kind_shorthand(cls, value: object) -> object:
        """``"fit"`` stands for ``{"kind": "fit"}`` (CLI flags and form fields send a kind)."""
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("alpha_bars")
    @classmethod
    def _check_grid(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return None
        a = np.asarray(value, dtype=np.float64)
        if a.size < 1 or np.any(a <= 0) or np.any(a >= 1) or np.any(np.diff(a) >= 0):
            raise ValueError("alpha_bars must be strictly decreasing values in (0, 1)")
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> RestoreSchedule:
        if (self.kind == "grid") != (self.alpha_bars is not None):
            raise ValueError("alpha_bars is required for kind 'grid' and only allowed there")
        if self.alpha_bars is not None and self.final_alpha_bar <= self.alpha_bars[0]:
            raise ValueError("final_alpha_bar must exceed the grid's largest ᾱ")
        # read_alpha_bar goes with any kind, the model's own schedule included (restore.plans).
        return self

    @property
    def num_steps(self) -> int | None:
        """The grid's N (None for the kinds that take N from the request)."""
        return None if self.alpha_bars is None else len(self.alpha_bars)

    @classmethod
    def from_fitted(cls, fitted: FittedSchedule) -> RestoreSchedule:
        """A ``grid`` schedule from a ``sagd schedule fit`` document."""
        return cls(
            kind="grid",
            alpha_bars=tuple(float(a) for a in fitted.alpha_bars),
            final_alpha_bar=float(fitted.final_alpha_bar),
        )

    def describe(self) -> str:
        read = (
            ""
            if self.read_alpha_bar is None
            else f"; band fill read at ᾱ = {self.read_alpha_bar:g}"
        )
        if self.kind == "grid":
            return f"fitted grid of {self.num_steps} levels (from a schedule file){read}"
        if self.kind == "fit":
            return f"fitted to the model ({self.loss}, {RESTORE_SAMPLER} transfer){read}"
        return {
            "model": "the model's training schedule",
            "linear": "linear grid",
            "cosine": "cosine grid",
        }[self.kind] + read


class RestoreOptions(BaseModel):
    """How to restore: every parameter of a restoration except the band. The single declaration
    of them: the REST forms and the service's job records derive from it (add a field here)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    method: Method = Field(
        default="auto",
        description="auto (default), notch, classical, ddnm or sagd: see METHOD_SUMMARIES",
    )
    notch_rolloff: Rolloff = "hard"
    notch_width: float | None = Field(
        default=None,
        gt=0.0,
        le=0.25,
        description="roll-off width δ (cycles/pixel) of gaussian/butterworth notches",
    )
    steps: int = Field(default=50, ge=1, le=1000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    samples: int = Field(default=1, ge=1, le=16)
    input_noise_std: float = Field(
        default=0.0, ge=0.0, le=10.0, description="declared broadband noise std on [-1, 1]"
    )
    estimator: Literal["mean", "sample"] = Field(
        default="mean",
        description="'mean': trusted bands denoised by Tweedie's posterior mean (one network "
        "call), band = mean of the samples; 'sample': every sample is a full posterior sample",
    )
    schedule: RestoreSchedule = Field(
        default_factory=RestoreSchedule,
        description="the ᾱ levels of the chains: 'model' (default), 'linear', 'cosine', 'fit' "
        "(fitted to the model for N = steps) or a fitted grid (kind 'grid', N = steps)",
    )

    @model_validator(mode="after")
    def _grid_matches_steps(self) -> Self:
        n = self.schedule.num_steps
        if n is not None and n != self.steps:
            raise ValueError(f"the schedule grid has {n} levels but steps is {self.steps}")
        return self


class RestoreRequest(RestoreOptions):
    """What to restore and how (pydantic, no torch needed to build or import one)."""

    band: BandSpec


__all__ = [
    "METHODS",
    "METHOD_SUMMARIES",
    "MODEL_FREE_METHODS",
    "RESTORE_SAMPLER",
    "SCHEDULE_KINDS",
    "Method",
    "RestoreOptions",
    "RestoreRequest",
    "RestoreSchedule",
    "Rolloff",
    "ScheduleKind",
]
