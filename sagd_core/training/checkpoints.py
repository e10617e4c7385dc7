"""Training checkpoints (safetensors + JSON) and loading a trained model for sampling.

A model directory holds ``model``/``ema``/``optimizer``/``rng`` tensor groups, ``config.json``
(the :class:`TrainConfig`) and ``meta.json`` (step, dataset hash, training statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sagd_core.checkpoint import CheckpointError, load_checkpoint
from sagd_core.diffusion import EpsPredictor
from sagd_core.models import UNet
from sagd_core.schedules import Schedule
from sagd_core.spectral.operator import SpectralNoise
from sagd_core.training.config import TrainConfig


@dataclass
class TrainedModel:
    """An EMA network ready for sampling, with what it was trained with."""

    net: UNet
    config: TrainConfig
    schedule: Schedule
    meta: dict[str, Any]
    device: torch.device

    @property
    def channels(self) -> int:
        return self.config.model.in_channels

    def noise_op(self, height: int, width: int) -> SpectralNoise:
        return SpectralNoise(self.config.noise, height, width, device=self.device)

    def eps_predictor(self, noise_op: SpectralNoise) -> EpsPredictor:
        return EpsPredictor(self.net, noise_op, project_trusted=self.config.project_trusted)


def parse_train_config(raw: dict[str, Any], where: Path) -> TrainConfig:
    try:
        return TrainConfig.model_validate(raw)
    except ValueError as exc:
        msg = f"{where}: config.json is not a valid training config: {exc}"
        raise CheckpointError(msg) from None


def load_trained_model(
    directory: Path | str, *, device: str | torch.device = "cpu", use_ema: bool = True
) -> TrainedModel:
    """Load a model directory written by :func:`sagd_core.training.train` (safetensors only)."""
    directory = Path(directory)
    group = "ema" if use_ema else "model"
    ckpt = load_checkpoint(directory, groups=[group], device=device)
    config = parse_train_config(ckpt.config, directory)
    net = UNet(config.model)
    try:
        net.load_state_dict(ckpt.tensors[group])
    except RuntimeError as exc:
        raise CheckpointError(f"{directory}: weights do not match the config: {exc}") from exc
    net.to(device).eval().requires_grad_(False)
    return TrainedModel(
        net=net,
        config=config,
        schedule=config.schedule.build(),
        meta=dict(ckpt.meta),
        device=torch.device(device),
    )
