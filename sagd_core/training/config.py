"""Training configuration: a frozen pydantic model saved as ``config.json`` beside every checkpoint.

It records everything needed to rebuild and interpret a model: the U-Net, the forward noise (with
the omitted or modelled band), the schedule, the data and the optimiser settings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sagd_core.models import UNetConfig
from sagd_core.schedules import Schedule, make_schedule, schedule_names
from sagd_core.spectral import BandSpec, NoiseSpec

#: What a model is for (DESIGN.md §4): ``standard`` isotropic or shaped generative model,
#: ``omission`` (noise zero in the corrupted band), ``band`` (noise only in the band),
#: ``full`` (full-support model trained on clean images, for DDNM).
ModelRole = Literal["standard", "omission", "band", "full"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ScheduleConfig(_Frozen):
    name: str = "linear"
    num_train_timesteps: int = Field(default=1000, ge=2, le=100_000)
    params: dict[str, Any] = Field(default_factory=dict)

    def build(self) -> Schedule:
        if self.name not in schedule_names():
            valid = ", ".join(schedule_names())
            raise ValueError(f"unknown schedule {self.name!r}; valid: {valid}")
        return make_schedule(self.name, self.num_train_timesteps, **self.params)


class DataConfig(_Frozen):
    """Where training images come from.

    ``source``: a built-in dataset name (``digits``, ``lfw``, ``natural``) or a folder path.
    ``corruption``: a synthetic corruption (``sagd_core.data.corruptions``) applied once, with
    ``corruption_seed``, so a model is trained on corrupted images only.
    ``declared_corruption``: what the images already hold, as their owner declares it (nothing
    is applied): ``"noise"`` says they are corrupted by noise flat in the model's band, so that a
    band model trained on them is a corruption-shaped model whose one call reads the clean image
    (DESIGN.md §4.3; :func:`~sagd_core.restore.methods.corruption_shaped.
    corruption_shaped_reason`). For folders of a user's own corrupted images; a synthetic
    ``corruption`` says it by itself.
    """

    source: str = "digits"
    image_size: int = Field(default=16, ge=4, le=1024)
    channels: int = Field(default=1, ge=1, le=4)
    split: Literal["train", "test", "all"] = "train"
    count: int | None = Field(default=None, ge=1, le=1_000_000)
    corruption: dict[str, Any] | None = None
    corruption_seed: int = 0
    declared_corruption: Literal["noise"] | None = None

    @model_validator(mode="after")
    def _one_corruption(self) -> DataConfig:
        if self.corruption is not None and self.declared_corruption is not None:
            raise ValueError(
                "data.declared_corruption describes images that are already corrupted and "
                "data.corruption corrupts them: give one or the other"
            )
        return self


class TrainConfig(_Frozen):
    model: UNetConfig
    noise: NoiseSpec = NoiseSpec()
    band: BandSpec | None = None  # the corruption band this model is about (metadata)
    role: ModelRole = "standard"
    schedule: ScheduleConfig = ScheduleConfig()
    project_trusted: bool = False
    data: DataConfig = DataConfig()
    steps: int = Field(default=2000, ge=1, le=10_000_000)
    batch_size: int = Field(default=64, ge=1, le=4096)
    lr: float = Field(default=2e-3, gt=0, le=1.0)
    weight_decay: float = Field(default=0.0, ge=0, le=1.0)
    warmup_steps: int = Field(default=50, ge=0)
    ema_decay: float = Field(default=0.999, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(default=1.0, gt=0)
    seed: int = 0
    checkpoint_every: int = Field(default=500, ge=1)
    device: str = "auto"
    bf16: bool = False
