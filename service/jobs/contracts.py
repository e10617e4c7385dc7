"""Request/response contracts shared by the API and the workers (pydantic v2, no torch).

The API validates requests into the ``*Params`` models and stores them with the job; the worker
reads them back. ``*Public`` models are what clients see.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from sagd_core.restore.request import MODEL_FREE_METHODS, Method, RestoreRequest, RestoreSchedule
from sagd_core.spectral.bands import BandSpec

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

TASK_RESTORE = "sagd.restore"
TASK_RESTORE_MANY = "sagd.restore_many"  # a chunk of a batch's items in one task
TASK_TRAIN = "sagd.train"
TASK_ANALYZE = "sagd.analyze"
TASK_WEBHOOK = "sagd.webhook"
TASK_SWEEP = "sagd.sweep"
QUEUE_RESTORE = "restore"
QUEUE_TRAIN = "train"
QUEUES = (QUEUE_RESTORE, QUEUE_TRAIN)
#: The queue each task is sent to: training on its own, everything else beside the restorations.
TASK_QUEUES = {
    TASK_RESTORE: QUEUE_RESTORE,
    TASK_RESTORE_MANY: QUEUE_RESTORE,
    TASK_ANALYZE: QUEUE_RESTORE,
    TASK_WEBHOOK: QUEUE_RESTORE,
    TASK_SWEEP: QUEUE_RESTORE,
    TASK_TRAIN: QUEUE_TRAIN,
}

ItemT = TypeVar("ItemT")

ModelKind = Literal["omission", "band", "full", "standard"]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobKind(StrEnum):
    RESTORE = "restore"
    TRAIN = "train"
    ANALYZE = "analyze"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelRef(_Frozen):
    """A registered model: its name and a version (None: the default version at run time)."""

    name: str = Field(pattern=NAME_PATTERN)
    version: int | None = Field(default=None, ge=1)


#: The schedule kinds a client can name (a fitted grid of its own is a CLI/library option).
SERVICE_SCHEDULE_KINDS = ("model", "linear", "cosine", "fit")
#: Model-free methods that still take the models a request names: ``auto`` runs a band model it
#: is given (when it was trained on noise of its band's shape; else the classical tier, and the
#: report says the model was not used). Without ``model=`` it uses none, never
#: ``SAGD_DEFAULT_MODEL``. ``notch`` and ``classical`` never use a model.
MODEL_OPTIONAL_METHODS: tuple[Method, ...] = ("auto",)


def takes_model(method: str) -> bool:
    """Whether a restoration by ``method`` may name models (``model=``): the learned methods
    (which need one: the server's default when none is named) and ``auto``."""
    return method not in MODEL_FREE_METHODS or method in MODEL_OPTIONAL_METHODS


class RestoreParams(RestoreRequest):
    """A restoration job as the worker needs it: the library's :class:`RestoreRequest` (every
    restore parameter, declared once there) plus what the service resolved for it. Stored as
    JSON with the job; the band spec is already validated."""

    corruption_type: str | None = Field(default=None, pattern=NAME_PATTERN)
    models: list[ModelRef] = Field(
        default_factory=list, max_length=3, description="e.g. an omission and a band model"
    )
    output_bit_depth: Literal[8, 16] = 8

    @field_validator("schedule")
    @classmethod
    def _service_kinds(cls, value: RestoreSchedule) -> RestoreSchedule:
        if value.kind not in SERVICE_SCHEDULE_KINDS:
            raise ValueError(f"schedule must be one of {', '.join(SERVICE_SCHEDULE_KINDS)}")
        return value

    @field_serializer("schedule")
    def _schedule_kind(self, value: RestoreSchedule) -> str | dict[str, Any]:
        """Just the kind when nothing else is set (what clients send and see)."""
        dumped: dict[str, Any] = value.model_dump(mode="json", exclude_defaults=True)
        return value.kind if set(dumped) <= {"kind"} else value.model_dump(mode="json")

    @property
    def is_model_free(self) -> bool:
        """Whether the job runs without any model (numpy only, cheap): a model-free method that
        names no model. ``auto`` with ``model=`` loads its models like a learned method."""
        return self.method in MODEL_FREE_METHODS and not self.models

    @property
    def is_numpy_only(self) -> bool:
        """Whether the job runs on numpy alone (cheap: one thread, micro-batched in batches): a
        model-free job, except ``auto`` where the shipped band reader applies (a network and
        its guard, seconds per image: :func:`sagd_core.restore.auto.reader_reason`)."""
        if not self.is_model_free:
            return False
        if self.method != "auto":
            return True
        from sagd_core.restore.auto import reader_reason

        return reader_reason(self.request()) is None

    def request(self) -> RestoreRequest:
        """The library's request alone (what :func:`sagd_core.restore.restore` reports)."""
        return RestoreRequest.model_validate(
            {name: getattr(self, name) for name in RestoreRequest.model_fields}
        )


class TrainParams(_Frozen):
    """A training job: a corruption type (band spec) and a dataset make a model version."""

    model_name: str = Field(pattern=NAME_PATTERN)
    corruption_type: str | None = Field(default=None, pattern=NAME_PATTERN)
    band: BandSpec
    model_kind: ModelKind = "band"
    dataset: str | None = Field(default=None, pattern=NAME_PATTERN)  # None: dataset.zip
    synthetic_corruption: dict[str, Any] | None = None  # applied to a built-in dataset
    # what the images already hold, as the user declares it (nothing applied): "noise" = noise
    # flat in the band, so a band model trained on them reads the clean image in one call
    declared_corruption: Literal["noise"] | None = None
    unet: str = Field(default="cpu-tiny", pattern=NAME_PATTERN)
    steps: int = Field(default=200, ge=1, le=1_000_000)
    batch_size: int = Field(default=32, ge=1, le=1024)
    image_size: int = Field(default=16, ge=8, le=512)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class AnalyzeParams(_Frozen):
    max_regions: int = Field(default=8, ge=1, le=64)


class Progress(BaseModel):
    step: int = 0
    total: int = 0
    fraction: float = 0.0
    message: str | None = None


class Timings(BaseModel):
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queue_s: float | None = None
    run_s: float | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str


class JobPublic(BaseModel):
    id: UUID
    kind: JobKind
    state: JobState
    progress: Progress
    eta_s: float | None = Field(default=None, description="estimated seconds left while running")
    timings: Timings
    error: ErrorInfo | None = None
    attempts: int = 0
    batch_id: UUID | None = None
    result_url: str | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="summary: report metrics, or the trained model version"
    )


class BatchItem(BaseModel):
    index: int
    name: str
    job_id: UUID
    state: JobState
    progress: Progress
    error: ErrorInfo | None = None


class BatchPublic(BaseModel):
    id: UUID
    state: JobState = Field(description="queued/running until every item is terminal")
    counts: dict[str, int]
    created_at: datetime
    items: list[BatchItem]
    result_url: str


class Page(BaseModel, Generic[ItemT]):
    """One page of a listing; the subclasses name the schema (``JobList``, ``BatchList``)."""

    items: list[ItemT] = Field(description="newest first")
    next_before: float | None = Field(
        default=None, description="pass as ?before= for the next page; null on the last page"
    )


class JobList(Page[JobPublic]):
    pass


class BatchSummary(BaseModel):
    id: UUID
    state: JobState
    counts: dict[str, int]
    size: int
    created_at: datetime
    url: str
    result_url: str


class BatchList(Page[BatchSummary]):
    pass


class CorruptionTypeCreate(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    #: Raw here (like a form's ``band_spec`` text): the route parses it into a ``BandSpec`` so
    #: that a bad spec answers with the ``invalid_band_spec`` code, not a generic 422.
    band: dict[str, Any]
    description: str = Field(default="", max_length=500)


class CorruptionTypePublic(BaseModel):
    name: str
    band: BandSpec
    description: str = ""
    created_at: datetime


class ModelVersion(BaseModel):
    version: int
    kind: str | None = Field(
        default=None, description="omission, band, full or standard (what the model can do)"
    )
    channels: int | None = Field(
        default=None, description="image channels it was trained on: 1 (gray) or 3 (RGB)"
    )
    band: BandSpec | None = None
    noise: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None
    data_hash: str | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    job_id: UUID | None = None


class ModelPublic(BaseModel):
    name: str
    default_version: int
    versions: list[ModelVersion]


class ApiError(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None
