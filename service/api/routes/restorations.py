"""``POST /v1/restorations``: one image + a band spec (or a corruption type) → a queued job."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile

from service.api.bands import band_json, check_band_for_image, resolve_band
from service.api.context import AppContext
from service.api.deps import Caller, Ctx
from service.api.errors import V1_ERRORS, ApiProblem, error_responses
from service.api.submit import (
    accepted,
    admitted,
    check_callback,
    check_models,
    decode_upload,
    enqueue,
    existing_for_key,
    in_memory,
    parse_model_refs,
    read_upload,
    validated,
)
from service.jobs.contracts import (
    TASK_RESTORE,
    JobKind,
    JobPublic,
    Method,
    RestoreParams,
    Rolloff,
    ScheduleName,
)
from service.jobs.images import stored_input

router = APIRouter(
    prefix="/v1/restorations", tags=["restorations"], responses=error_responses(*V1_ERRORS)
)


class ImageSize(Protocol):
    """What the parameters depend on: an image's size and bit depth."""

    @property
    def height(self) -> int: ...

    @property
    def width(self) -> int: ...

    @property
    def bit_depth(self) -> int: ...


def restore_params(
    ctx: AppContext,
    decoded: Sequence[ImageSize],
    *,
    band_spec: str | None,
    corruption_type: str | None,
    method: str,
    notch_rolloff: str,
    model: str | None,
    steps: int,
    seed: int,
    samples: int,
    input_noise_std: float,
    output_bit_depth: int | None,
    schedule: str = "model",
) -> RestoreParams:
    """Validate everything about a restoration except the image bytes (shared with batches)."""
    spec = resolve_band(band_spec, corruption_type, ctx.corruption_types)
    for image in decoded:
        check_band_for_image(spec, image.height, image.width)
    data: dict[str, Any] = {
        "band": band_json(spec),
        "corruption_type": corruption_type,
        "method": method,
        "notch_rolloff": notch_rolloff,
        "models": parse_model_refs(model),
        "steps": steps,
        "seed": seed,
        "samples": samples,
        "input_noise_std": input_noise_std,
        "output_bit_depth": output_bit_depth or max((i.bit_depth for i in decoded), default=8),
        "schedule": schedule,
    }
    params = validated(RestoreParams, data)
    return params.model_copy(update={"models": check_models(ctx, params.method, params.models)})


class RestoreForm(BaseModel):
    """The form fields of an upload besides ``image`` (FastAPI rules: an empty field is unset)."""

    model_config = ConfigDict(extra="ignore")

    band_spec: str | None = Field(default=None, description="band spec JSON")
    corruption_type: str | None = None
    method: Method = "sagd"
    notch_rolloff: Rolloff = "hard"
    model: str | None = Field(
        default=None, description="registered models: name[:version][,name[:version]]"
    )
    steps: int = 50
    seed: int = 0
    samples: int = Field(default=1, description="> 1 gives an uncertainty map")
    input_noise_std: float = 0.0
    output_bit_depth: int | None = Field(default=None, description="8 or 16; default: input's")
    schedule: ScheduleName = Field(default="model", description="model, linear, cosine or fit")
    callback_url: str | None = None


def _form_schema() -> dict[str, Any]:
    """The multipart body as OpenAPI shows it: the image file and :class:`RestoreForm`."""
    schema = RestoreForm.model_json_schema()
    image = {"type": "string", "format": "binary", "description": "PNG, JPEG, TIFF or WebP"}
    schema["properties"] = {"image": image, **schema["properties"]}
    schema["required"] = ["image"]
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


def _form_fields(form: FormData) -> tuple[UploadFile, RestoreForm]:
    """The upload and its fields. Parsed here rather than declared as 13 ``Form`` parameters:
    FastAPI's per-field form handling made accepting an upload cost 19 % more instructions
    (callgrind, one-off measurement), for what one pydantic validation does."""
    image = form.get("image")
    if not isinstance(image, UploadFile):
        raise ApiProblem(
            422, "validation_error", "image: a file is required (multipart field 'image')"
        )
    fields: dict[str, Any] = {}
    for name, value in form.multi_items():
        if name == "image" or value == "":
            continue
        if not isinstance(value, str):
            raise ApiProblem(422, "validation_error", f"{name}: expected text, not a file")
        fields[name] = value
    return image, validated(RestoreForm, fields)


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    responses={
        202: {"description": "queued; poll the Location"},
        **error_responses(400, 413, 415),
    },
    openapi_extra=_form_schema(),
)
async def create_restoration(
    request: Request,
    ctx: Ctx,
    caller: Caller,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Accept one upload. An upload Starlette kept in memory (≤ 1 MiB, the usual case) is
    checked, stored and queued right here on the event loop: a few milliseconds of CPU, and under
    a burst each process then answers its uploads in arrival order instead of sharing the CPU
    (and the GIL) among all of them so that every answer comes late. A larger one (spooled to
    disk) goes to the thread pool, a few at a time (``SAGD_ACCEPT_CONCURRENCY``), so its decode
    does not hold up the loop; so does one with a ``callback_url``, whose host is resolved."""
    form_data = await request.form()
    try:
        image, fields = _form_fields(form_data)
        callback_url = fields.callback_url
        form = fields.model_dump(exclude={"callback_url"})

        def accept() -> JSONResponse:
            data = read_upload(image, ctx.settings.max_upload_bytes, what="image")
            return _accept(ctx, caller.key_id, data, form, callback_url, idempotency_key)

        if in_memory(image) and not callback_url:  # a callback URL is resolved (DNS): not here
            return accept()
        return await run_in_threadpool(admitted, ctx, accept)
    finally:
        await form_data.close()


def _accept(
    ctx: AppContext,
    owner: str,
    data: bytes,
    form: dict[str, Any],
    callback_url: str | None,
    idempotency_key: str | None,
) -> JSONResponse:
    decoded = decode_upload(ctx, data)
    params = restore_params(ctx, [decoded], **form)
    hook = check_callback(ctx, callback_url)
    job_id = uuid.uuid4()
    earlier = existing_for_key(ctx, owner, idempotency_key, job_id)
    if earlier is not None:
        return accepted(earlier)
    job = enqueue(
        ctx,
        job_id=job_id,
        kind=JobKind.RESTORE,
        task=TASK_RESTORE,
        owner=owner,
        params=params.model_dump(mode="json"),
        files={"input.png": stored_input(decoded, data)},
        callback_url=hook,
    )
    return accepted(job)
