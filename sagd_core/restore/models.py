"""Loading trained models for restoration and grouping them by role (ARCHITECTURE.md contract).

A restoration uses up to three models (DESIGN.md §4): an ``omission`` model (forward noise zero in
the band, trained on corrupted images) to denoise the trusted bands, a ``band`` model (noise only
in the band, trained on corrupted images) to fill the band, and a ``full`` support model (trained on
clean images) for DDNM. The role is read from the checkpoint's ``config.role``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import torch

from sagd_core.checkpoint import CheckpointError
from sagd_core.restore.errors import ModelMismatchError
from sagd_core.schedules import SamplingPlan
from sagd_core.training.checkpoints import TrainedModel, load_trained_model

#: A trained model ready for sampling (EMA weights, config, schedule, noise operator factory).
LoadedModel = TrainedModel

RestoreRole = Literal["omission", "band", "full"]
RESTORE_ROLES: tuple[RestoreRole, ...] = ("omission", "band", "full")
#: The N-step sampling plan of each model of a restoration, by role (``restore.plans.
#: resolve_plans``); the methods cut them (:class:`~sagd_core.schedules.SamplingPlan`).
RolePlans = Mapping[str, SamplingPlan]


#: Optional sidecar of a band model: the calibrated fill gain (:mod:`calibration`).
CALIBRATION_FILE = "fill_calibration.json"


def load_model(directory: Path | str, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint directory (safetensors + JSON only; raises ``CheckpointError``).

    A valid ``fill_calibration.json`` beside it is put in ``meta["fill_calibration"]``; an
    invalid one is refused (the gain must be a number in [0, 1], the read level, when present,
    in (0, 1))."""
    model = load_trained_model(directory, device=device)
    sidecar = Path(directory) / CALIBRATION_FILE
    if sidecar.exists():
        try:
            calib = json.loads(sidecar.read_text())
            gain = float(calib["gain"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{sidecar}: not a valid fill calibration ({exc})") from exc
        if not 0.0 <= gain <= 1.0:
            raise CheckpointError(f"{sidecar}: gain {gain} is outside [0, 1]")
        read = calib.get("read_alpha_bar")
        if read is not None and not (isinstance(read, int | float) and 0.0 < read < 1.0):
            raise CheckpointError(f"{sidecar}: read_alpha_bar {read!r} is outside (0, 1)")
        model.meta["fill_calibration"] = calib
    return model


@dataclass(frozen=True)
class ModelSet:
    """The models available to one restoration, by role (any may be missing)."""

    omission: LoadedModel | None = None
    band: LoadedModel | None = None
    full: LoadedModel | None = None

    @classmethod
    def from_models(cls, models: Iterable[LoadedModel]) -> ModelSet:
        """Group models by their ``config.role``; two models of one role, or a role that
        restoration does not use (``standard``), raise :class:`ModelMismatchError`."""
        found: dict[str, LoadedModel] = {}
        for model in models:
            role = model.config.role
            if role not in RESTORE_ROLES:
                raise ModelMismatchError(
                    f"a model of role {role!r} cannot be used for restoration "
                    f"(roles: {', '.join(RESTORE_ROLES)})"
                )
            if role in found:
                raise ModelMismatchError(f"two models of role {role!r} were given; pass one")
            found[role] = model
        return cls(**found)

    @classmethod
    def load(cls, directories: Iterable[Path | str], device: str = "cpu") -> ModelSet:
        return cls.from_models(load_model(d, device=device) for d in directories)

    def roles(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def get(self, role: RestoreRole) -> LoadedModel | None:
        model: LoadedModel | None = getattr(self, role)
        return model

    def to(self, device: str | torch.device) -> ModelSet:
        """The same models on ``device``; networks elsewhere are copied (never moved in place, so
        a worker's cached models stay where they were loaded)."""
        dev = torch.device(device)
        moved: dict[str, LoadedModel] = {}
        for role in self.roles():
            model: LoadedModel = getattr(self, role)
            if model.device == dev:
                moved[role] = model
            else:
                net = copy.deepcopy(model.net).to(dev)
                moved[role] = TrainedModel(
                    net=net,
                    config=model.config,
                    schedule=model.schedule,
                    meta=model.meta,
                    device=dev,
                )
        return ModelSet(**moved)


__all__ = ["RESTORE_ROLES", "LoadedModel", "ModelSet", "RestoreRole", "RolePlans", "load_model"]
