"""``POST /v1/restorations``: one image + a band spec (or a corruption type) → a queued job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol

from fastapi import Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema
from starlette.datastructures import FormData, UploadFile

from sagd_core.restore.request import RestoreOptions, RestoreSchedule
from sagd_core.spectral.bands import BandSpec
from service.api.band_coverage import ON_LOOP_BAND_CHECK, band_check_cost
from service.api.bands import check_band_for_image, resolve_band
from service.api.context import AppContext
from service.api.deps import Caller, Ctx
from service.api.errors import ApiProblem, error_responses, v1_router
from service.api.submit import (
    ChosenModels,
    admitted,
    check_callback,
    check_models,
    check_restorable,
    decode_upload,
    in_memory,
    parse_model_refs,
    read_upload,
    submit,
    validated,
)
from service.jobs.contracts import (
    SERVICE_SCHEDULE_KINDS,
    TASK_RESTORE,
    JobKind,
    JobPublic,
    RestoreParams,
)
from service.jobs.images import ImageInfo, stored_input
from service.jobs.jobstore import NewJob

router = v1_router("restorations")


class ImageSize(Protocol):
    """What the parameters depend on: an image's size, channels and bit depth."""

    @property
    def height(self) -> int: ...

    @property
    def width(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def bit_depth(self) -> int: ...


def restore_params(
    ctx: AppContext, decoded: Sequence[ImageSize], form: RestoreForm
) -> tuple[RestoreParams, ChosenModels]:
    """Validate everything about a restoration except the image bytes (shared with batches):
    the parameters and the models they use (a batch checks each item's channels against them
    with :meth:`ChosenModels.check_image` as it arrives)."""
    spec = resolve_band_of(ctx, form)
    for image in decoded:
        check_band_for_image(spec, image.height, image.width)
    params = validated(
        RestoreParams,
        {
            **{name: getattr(form, name) for name in RestoreOptions.model_fields},
            "band": spec,
            "corruption_type": form.corruption_type,
            "models": parse_model_refs(form.model),
            "output_bit_depth": form.output_bit_depth
            or max((i.bit_depth for i in decoded), default=8),
        },
    )
    chosen = check_models(ctx, params.method, params.models, input_noise_std=params.input_noise_std)
    for image in decoded:
        chosen.check_image(image.channels)
    return params.model_copy(update={"models": chosen.refs}), chosen


#: OpenAPI: a form sends the schedule's kind as text (a grid of one's own is a library option).
_SCHEDULE_AS_TEXT = WithJsonSchema(
    {
        "type": "string",
        "enum": list(SERVICE_SCHEDULE_KINDS),
        "default": "model",
        "description": "sampling schedule of learned methods: the model's own, linear, cosine, "
        "or fit (fitted to the model's data spectrum for N = steps; the first use of an N is slow)",
    }
)


def _number_from_text(value: Any) -> Any:
    """A form sends ``"8"``: read it as the number a ``Literal[8, 16]`` compares with (pydantic
    compares literals strictly, so the text itself would never match). Anything else is left
    for the literal to refuse."""
    if isinstance(value, str) and 0 < len(value) <= 6 and value.isascii() and value.isdigit():
        return int(value)
    return value


class RestoreForm(RestoreOptions):
    """The form fields of an upload besides ``image``: every :class:`RestoreOptions` field (the
    one declaration of a restore's parameters) plus what only HTTP carries. FastAPI's rules
    apply: an empty field is unset."""

    model_config = ConfigDict(extra="ignore")

    schedule: Annotated[RestoreSchedule, _SCHEDULE_AS_TEXT] = Field(default_factory=RestoreSchedule)
    band_spec: str | None = Field(default=None, description="band spec JSON")
    corruption_type: str | None = None
    model: str | None = Field(
        default=None,
        description="registered models: name[:version][,name[:version]]. ddnm, sagd: default "
        "SAGD_DEFAULT_MODEL; auto: optional, no default (a band model trained on its band's "
        "noise is used, the report says if a model was not); notch, classical: refused",
    )
    output_bit_depth: Annotated[Literal[8, 16] | None, BeforeValidator(_number_from_text)] = Field(
        default=None, description="8 or 16; default: the input's"
    )
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
    does not hold up the loop; so does one with a ``callback_url``, whose host is resolved, and
    one whose band check is heavy (``ON_LOOP_BAND_CHECK``: a small file of a large image)."""
    form_data = await request.form()
    try:
        image, form = _form_fields(form_data)

        def accept() -> JSONResponse:
            data = read_upload(image, ctx.settings.max_upload_bytes, what="image")
            return _accept(ctx, caller.key_id, data, _decoded(ctx, data), form, idempotency_key)

        if not in_memory(image) or form.callback_url:  # a callback URL is resolved (DNS)
            return await run_in_threadpool(admitted, ctx, accept)
        data = read_upload(image, ctx.settings.max_upload_bytes, what="image")
        decoded = _decoded(ctx, data)

        def rest() -> JSONResponse:
            return _accept(ctx, caller.key_id, data, decoded, form, idempotency_key)

        # A small file can still be a large image: its band check goes to the pool when heavy.
        if band_check_cost(resolve_band_of(ctx, form), decoded.height, decoded.width) > (
            ON_LOOP_BAND_CHECK
        ):
            return await run_in_threadpool(admitted, ctx, rest)
        return rest()
    finally:
        await form_data.close()


def resolve_band_of(ctx: AppContext, form: RestoreForm) -> BandSpec:
    """The form's band spec (parsed; a 422 when invalid)."""
    return resolve_band(form.band_spec, form.corruption_type, ctx.corruption_types)


def _decoded(ctx: AppContext, data: bytes) -> ImageInfo:
    decoded = decode_upload(ctx, data)
    check_restorable(decoded)
    return decoded


def _accept(
    ctx: AppContext,
    owner: str,
    data: bytes,
    decoded: ImageInfo,
    form: RestoreForm,
    idempotency_key: str | None,
) -> JSONResponse:
    params, _ = restore_params(ctx, [decoded], form)
    hook = check_callback(ctx, form.callback_url)
    job = NewJob(JobKind.RESTORE, owner, params.model_dump(mode="json"), hook)
    files = {"input.png": stored_input(decoded, data)}
    return submit(ctx, job, TASK_RESTORE, files, idempotency_key)
