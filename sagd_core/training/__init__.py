"""Training: configuration, loop, EMA, checkpoints and presets."""

from sagd_core.training.checkpoints import TrainedModel, load_trained_model
from sagd_core.training.config import DataConfig, ScheduleConfig, TrainConfig
from sagd_core.training.loop import TrainProgress, TrainResult, resolve_device, train
from sagd_core.training.presets import PRESETS, training_preset

__all__ = [
    "PRESETS",
    "DataConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainedModel",
    "load_trained_model",
    "resolve_device",
    "train",
    "training_preset",
]
