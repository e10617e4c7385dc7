"""Turning a validated request into a queued job: files on disk, a hash in Redis, a task sent.

Order matters for crash safety: inputs are written first, then the job hash and its task are
written in one Redis transaction (``JobStore.create`` with a ``service.jobs.queue.TaskMessage``): a
job never exists without its queued task. If Redis refuses, nothing was created and the client
gets a 503 (``service.api.errors``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from sagd_core.restore.request import MODEL_FREE_METHODS
from service.api.context import AppContext
from service.api.errors import ApiProblem
from service.jobs.contracts import ModelRef, ModelVersion, takes_model
from service.jobs.images import ImageInfo, ImageRejected, inspect_image
from service.jobs.jobstore import NewJob
from service.jobs.registry import ModelNotFoundError
from service.jobs.views import job_public
from service.jobs.webhooks import WebhookTargetError, check_callback_url

logger = logging.getLogger(__name__)
_CHUNK = 1 << 20
INLINE_UPLOAD_BYTES = 1 << 20  # Starlette's MultiPartParser.spool_max_size
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def read_upload(upload: UploadFile, limit: int, *, what: str = "file") -> bytes:
    """The upload's bytes, counted while reading: 413 past ``limit``."""
    chunks: list[bytes] = []
    total = 0
    while chunk := upload.file.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise ApiProblem(413, "payload_too_large", f"{what} exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def in_memory(upload: UploadFile) -> bool:
    """Whether the upload is small enough for Starlette to have kept it in memory (it spools
    larger ones to a temporary file): reading and decoding it cost no disk I/O and little CPU."""
    return upload.size is not None and upload.size <= INLINE_UPLOAD_BYTES


def admitted(ctx: AppContext, work: Callable[[], R]) -> R:
    """Run ``work`` (in a pool thread) once one of the process's few accept slots is free."""
    with ctx.admission:
        return work()


def decode_upload(ctx: AppContext, data: bytes, *, what: str = "image") -> ImageInfo:
    """Check an upload without decoding it to float (``inspect_image``: bounded memory); its
    size, channels and bit depth, or the refusal as a 4xx naming ``what``."""
    try:
        return inspect_image(
            data, max_pixels=ctx.settings.max_pixels, min_side=ctx.settings.min_side
        )
    except ImageRejected as exc:
        raise ApiProblem(exc.status, exc.code, f"{what}: {exc}") from exc


def check_restorable(image: ImageInfo, *, what: str = "image") -> None:
    """422 ``constant_image`` for an image whose samples all have one value: the restoration
    would fail on it after the 202 ("the image is constant"), so it is refused here."""
    if image.constant:
        raise ApiProblem(
            422,
            "constant_image",
            f"{what}: every pixel has the same value; there is nothing to restore",
        )


def validated(model: type[M], data: dict[str, Any]) -> M:
    """Build a params model, turning pydantic errors into a 422 with their messages."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
        raise ApiProblem(422, "validation_error", summary, details=details) from exc


def parse_model_refs(text: str | None) -> list[dict[str, Any]]:
    """``"name[:version][,name[:version]...]"`` → model references (422 when malformed: a
    field that is sent names a model in every part; an empty field is unset)."""
    refs: list[dict[str, Any]] = []
    if not text:
        return refs
    for part in text.split(","):
        name, _, version = part.strip().partition(":")
        if not name:
            raise ApiProblem(
                422,
                "validation_error",
                f"model: {text[:80]!r} has a part with no model name; send "
                "name[:version][,name[:version]]",
            )
        if version and not (version.isascii() and version.isdigit() and len(version) <= 9):
            raise ApiProblem(
                422,
                "validation_error",
                f"model version must be a whole number (at most 9 digits): {part[:80]!r}",
            )
        refs.append({"name": name, "version": int(version) if version else None})
    return refs


@dataclass(frozen=True)
class ChosenModel:
    """A model a restoration will use: how it was asked for and what the registry says of it."""

    ref: ModelRef
    info: ModelVersion

    @property
    def label(self) -> str:
        return f"model '{self.ref.name}' v{self.info.version}"


@dataclass(frozen=True)
class ChosenModels:
    """The models of a restoration (none for a model-free method that names none)."""

    refs: list[ModelRef]
    models: list[ChosenModel]

    def check_image(self, channels: int, *, what: str = "image") -> None:
        """422 ``model_channel_mismatch`` if a model was trained on other channels than the
        image's: the worker would refuse it after the 202. A gray image against RGB models only
        is accepted (the library restores it as three equal channels,
        ``sagd_core.restore.gray_via_rgb``); an RGB image against a gray model is not. A model
        whose channels the registry does not know is left to the worker."""
        known = [m.info.channels for m in self.models if m.info.channels is not None]
        if channels == 1 and known and all(c == 3 for c in known):
            return
        for model in self.models:
            expected = model.info.channels
            if expected is not None and expected != channels:
                raise ApiProblem(
                    422,
                    "model_channel_mismatch",
                    f"{what}: {model.label} was trained on {_channels(expected)} images but "
                    f"the image is {_channels(channels)}; use a model trained on "
                    f"{_channels(channels)} images, or a model-free method (method=auto "
                    "without model=, classical or notch)",
                )


def _channels(count: int) -> str:
    return {1: "gray (1 channel)", 3: "RGB (3 channels)"}.get(count, f"{count}-channel")


#: What each kind of model does, for the messages below.
_KIND_SAYS = {
    "omission": "an omission model: no support in the band, it cannot fill it (it denoises the "
    "trusted bands)",
    "band": "a band model",
    "full": "a full model (trained on clean images, for method=ddnm)",
    "standard": "a standard model (a training baseline, not used for restoration)",
}


def _describe_kind(kind: str | None) -> str:
    return _KIND_SAYS.get(str(kind), f"a model of kind {kind!r}")


def check_models(
    ctx: AppContext, method: str, refs: list[ModelRef], *, input_noise_std: float = 0.0
) -> ChosenModels:
    """The models a restoration will use, looked up in the registry (422 ``unknown_model`` if
    one is not registered):

    - a learned method (ddnm, sagd): the named ones, else ``SAGD_DEFAULT_MODEL``; 422
      ``model_cannot_fill_band`` if none of them can do what the method needs
      (:func:`check_roles`);
    - ``auto``: the named ones, of any kind (the engine runs a band model trained on noise of
      its band's shape, else the classical tier, and its report says which), else none: never
      the default model, which ``auto`` would not use;
    - ``notch`` and ``classical`` use no model: one named with them is refused (422
      ``model_not_used``) rather than silently ignored."""
    if method in MODEL_FREE_METHODS and not refs:
        return ChosenModels([], [])
    if not takes_model(method):
        raise ApiProblem(
            422,
            "model_not_used",
            f"method={method} uses no model, so model= would be ignored; send it without "
            "model=, or use method=auto with a band model (it runs the model where it was "
            "trained on noise of its band's shape, else the classical tier, and the report says "
            "which), or a learned method (sagd, ddnm)",
        )
    chosen = refs or [ModelRef(name=ctx.settings.default_model)]
    instead = "send method=auto without model=" if method == "auto" else "use method=notch"
    models = []
    for ref in chosen:
        try:
            info = ctx.models.describe(ref.name, ref.version)
        except (ModelNotFoundError, ValueError) as exc:
            raise ApiProblem(
                422,
                "unknown_model",
                f"{exc}; train one (POST /v1/trainings) or {instead}",
            ) from exc
        models.append(ChosenModel(ref, info))
    baselines = [m.label for m in models if m.info.kind == "standard"]
    if baselines:  # the engine refuses them: say so before the job exists, not after the 202
        raise ApiProblem(
            422,
            "model_cannot_fill_band",
            f"{', '.join(baselines)}: {_describe_kind('standard')}; name band, omission or "
            "full models",
        )
    if method not in MODEL_FREE_METHODS:  # auto: any other kind; its report says if it used them
        check_roles(method, models, input_noise_std=input_noise_std, default=not refs)
    return ChosenModels(chosen, models)


def check_roles(
    method: str, models: list[ChosenModel], *, input_noise_std: float, default: bool
) -> None:
    """A learned method whose models cannot do its work is refused before the job exists (422
    ``model_cannot_fill_band``), not run into a silent notch: ``sagd`` needs a band model to fill
    the band, except with declared input noise and an omission model (the trusted bands are
    denoised and the report says the band was omitted); ``ddnm`` needs a full model. Models of
    unknown kind (registered without one) are given the benefit of the doubt."""
    kinds = {m.info.kind for m in models}
    if None in kinds:
        return
    said = "; ".join(f"{m.label} is {_describe_kind(m.info.kind)}" for m in models)
    source = " (the server's default SAGD_DEFAULT_MODEL: no model= was given)" if default else ""
    model_free = "method=auto (or classical, notch) for a model-free restoration"
    if method == "sagd":
        if "band" in kinds or (input_noise_std > 0 and "omission" in kinds):
            return
        message = (
            f"method=sagd fills the band with a band model and none of the models{source} is "
            f"one: {said}. The band would only be deleted, as method=notch does. Use "
            f"{model_free}, add a band model (model=NAME,BAND_MODEL), or train one (POST "
            "/v1/trainings with model_kind=band)"
        )
        if "omission" in kinds:
            message += (
                "; an omission model alone is accepted with input_noise_std > 0, to denoise the "
                "trusted bands (the band is then omitted)"
            )
    elif method == "ddnm":
        if "full" in kinds:
            return
        message = (
            "method=ddnm fills the band with a full model (trained on clean images) and none "
            f"of the models{source} is one: {said}. Use {model_free}, method=sagd with a "
            "band model, or train a full model (POST /v1/trainings with model_kind=full)"
        )
    else:
        return
    raise ApiProblem(422, "model_cannot_fill_band", message)


def check_callback(ctx: AppContext, url: str | None) -> str | None:
    if not url:
        return None
    try:
        return check_callback_url(url, allow_private=ctx.settings.webhook_allow_private)
    except WebhookTargetError as exc:
        raise ApiProblem(422, "invalid_callback_url", str(exc)) from exc


def enqueue(
    ctx: AppContext, job_id: UUID, job: NewJob, task: str, files: dict[str, bytes]
) -> dict[str, str]:
    """Write the job's files, then create its record and queue it at once; returns the record
    as created."""
    for name, data in files.items():
        ctx.storage.write_new(job_id, name, data)
    return ctx.jobs.create_many([job_id], job, ctx.queue.message(task, job_id))[0]


def enqueue_chunk(ctx: AppContext, job_ids: list[UUID], job: NewJob, task: str) -> None:
    """Create the records of several jobs whose inputs are already on disk and queue them as one
    task (micro-batching), in one transaction."""
    ctx.jobs.create_many(job_ids, job, ctx.queue.message_many(task, job_ids))


def submit(
    ctx: AppContext, job: NewJob, task: str, files: dict[str, bytes], idempotency_key: str | None
) -> JSONResponse:
    """Queue one job and answer 202, or answer with the job this ``Idempotency-Key`` already
    made (``job.callback_url`` checked by :func:`check_callback` first)."""
    job_id = uuid.uuid4()
    earlier = existing_for_key(ctx, job.owner, idempotency_key, job_id)
    if earlier is not None:
        return accepted(earlier)
    return accepted(enqueue(ctx, job_id, job, task, files))


def existing_for_key(
    ctx: AppContext, owner: str, key: str | None, job_id: UUID
) -> dict[str, str] | None:
    """With an ``Idempotency-Key``: the job already made for it by this owner, else None."""
    if not key:
        return None
    if len(key) > 255:
        raise ApiProblem(422, "invalid_idempotency_key", "Idempotency-Key is longer than 255")
    earlier = ctx.jobs.reserve_idempotency(owner, key, job_id)
    if earlier is None:
        return None
    job = ctx.jobs.get_owned(UUID(earlier), owner)
    if job is None:  # the earlier request died before creating it: rebind to this one
        ctx.jobs.rebind_idempotency(owner, key, job_id)
    return job


def accepted(job: dict[str, str]) -> JSONResponse:
    """202 with the job and ``Location: /v1/jobs/{id}``."""
    public = job_public(job)
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/jobs/{public.id}"},
    )


def get_created(ctx: AppContext, job_id: UUID) -> dict[str, str]:
    job = ctx.jobs.get(job_id)
    if job is None:  # only if Redis lost it between the two calls
        raise ApiProblem(503, "unavailable", "job record not found right after creation")
    return job
