"""``POST /v1/trainings``: a corruption type + a dataset (built-in or a zip) → a model version."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import File, Form, Header, UploadFile
from fastapi.responses import JSONResponse

from sagd_core.data.builtin import BUILTIN_DATASETS
from sagd_core.data.corruptions import CorruptionError, parse_corruption
from service.api.bands import resolve_band
from service.api.deps import Caller, Ctx
from service.api.errors import ApiProblem, error_responses, v1_router
from service.api.submit import (
    check_callback,
    read_upload,
    submit,
    validated,
)
from service.jobs.contracts import TASK_TRAIN, JobKind, JobPublic, ModelKind, TrainParams
from service.jobs.jobstore import NewJob
from service.jobs.zips import ZipRejected, iter_zip_images

router = v1_router("trainings")


@router.post("", status_code=202, response_model=JobPublic, responses=error_responses(400, 413))
def create_training(
    ctx: Ctx,
    caller: Caller,
    model_name: Annotated[str, Form(description="registry name; a new version is added")],
    corruption_type: Annotated[str | None, Form()] = None,
    band_spec: Annotated[str | None, Form(description="band spec JSON")] = None,
    model_kind: Annotated[ModelKind, Form()] = "band",
    dataset: Annotated[str | None, Form(description="built-in dataset name")] = None,
    dataset_zip: Annotated[UploadFile | None, File(description="zip of images")] = None,
    synthetic_corruption: Annotated[
        str | None, Form(description="JSON corruption applied to a built-in dataset")
    ] = None,
    declared_corruption: Annotated[
        Literal["noise"] | None,
        Form(
            description="what the dataset's images already hold: 'noise' = noise flat in the "
            "band (a band model trained on them is then read in one call by method=auto/sagd)"
        ),
    ] = None,
    unet: Annotated[str, Form(description="U-Net preset")] = "cpu-tiny",
    batch_size: Annotated[int, Form()] = 32,
    steps: Annotated[int, Form()] = 200,
    image_size: Annotated[int, Form()] = 32,
    seed: Annotated[int, Form()] = 0,
    callback_url: Annotated[str | None, Form()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    if (dataset is None) == (dataset_zip is None):
        raise ApiProblem(422, "invalid_dataset", "send exactly one of dataset or dataset_zip")
    if dataset is not None and dataset not in BUILTIN_DATASETS:
        raise ApiProblem(
            422, "invalid_dataset", f"unknown dataset {dataset!r}; built-in: {BUILTIN_DATASETS}"
        )
    corruption = None
    if synthetic_corruption is not None:
        if dataset is None:
            raise ApiProblem(
                422, "invalid_dataset", "synthetic_corruption needs a built-in dataset"
            )
        try:
            corruption = parse_corruption(synthetic_corruption).model_dump(mode="json")
        except (CorruptionError, ValueError) as exc:
            raise ApiProblem(422, "invalid_corruption", str(exc)) from exc
    if declared_corruption is not None and (model_kind != "band" or corruption is not None):
        raise ApiProblem(
            422,
            "invalid_corruption",
            "declared_corruption describes images that already hold noise in the band and "
            "goes with model_kind=band only, without synthetic_corruption (which corrupts "
            "clean images itself)",
        )
    spec = resolve_band(band_spec, corruption_type, ctx.corruption_types)
    data: dict[str, Any] = {
        "model_name": model_name,
        "corruption_type": corruption_type,
        "band": spec,
        "model_kind": model_kind,
        "dataset": dataset,
        "synthetic_corruption": corruption,
        "declared_corruption": declared_corruption,
        "unet": unet,
        "batch_size": batch_size,
        "steps": steps,
        "image_size": image_size,
        "seed": seed,
    }
    params = validated(TrainParams, data)
    files: dict[str, bytes] = {}
    if dataset_zip is not None:
        s = ctx.settings
        blob = read_upload(dataset_zip, s.max_batch_bytes, what="dataset_zip")
        # Validate now (bounds, names, images present), one member at a time; the worker decodes.
        try:
            for _ in iter_zip_images(
                blob,
                max_entries=s.max_zip_entries,
                max_total_bytes=s.max_zip_uncompressed_bytes,
                max_member_bytes=s.max_upload_bytes,
            ):
                pass
        except ZipRejected as exc:
            raise ApiProblem(exc.status, "invalid_archive", str(exc)) from exc
        files["dataset.zip"] = blob
    hook = check_callback(ctx, callback_url)
    job = NewJob(JobKind.TRAIN, caller.key_id, params.model_dump(mode="json"), hook)
    return submit(ctx, job, TASK_TRAIN, files, idempotency_key)
