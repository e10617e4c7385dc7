"""``/v1/batches``: many images (files and/or a zip) with one spec → one job per image."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import File, Form, UploadFile
from fastapi.responses import JSONResponse, Response

from sagd_core.spectral.bands import BandSpec
from service.api.bands import check_band_for_image
from service.api.context import AppContext
from service.api.deps import BatchesPage, Caller, Ctx
from service.api.errors import ApiProblem, error_responses, v1_router
from service.api.routes.restorations import RestoreForm, restore_params
from service.api.submit import (
    ChosenModels,
    check_callback,
    check_restorable,
    decode_upload,
    enqueue,
    enqueue_chunk,
    read_upload,
)
from service.jobs.contracts import (
    TASK_RESTORE,
    TASK_RESTORE_MANY,
    BatchList,
    BatchPublic,
    JobKind,
)
from service.jobs.images import stored_input
from service.jobs.jobstore import NewJob
from service.jobs.views import batch_public, batch_summary
from service.jobs.zips import ZipRejected, iter_zip_images

router = v1_router("batches", 404)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def display_name(name: str | None, index: int) -> str:
    """A short, safe label for an item (for listings and zip entries; never a disk path)."""
    stem = (name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].rsplit(".", 1)[0]
    stem = _UNSAFE.sub("_", stem).strip("_")[:64]
    return stem or f"item{index}"


def _uploads(
    ctx: AppContext, images: list[UploadFile], archive: UploadFile | None
) -> Iterator[tuple[str, bytes]]:
    """``(client name, bytes)`` of each item, one at a time: files first, then zip members."""
    s = ctx.settings
    for upload in images:
        yield upload.filename or "", read_upload(upload, s.max_upload_bytes, what="image")
    if archive is None:
        return
    data = read_upload(archive, s.max_batch_bytes, what="archive")
    members = iter_zip_images(
        data,
        max_entries=s.max_zip_entries,
        max_total_bytes=s.max_zip_uncompressed_bytes,
        max_member_bytes=s.max_upload_bytes,
        max_images=s.max_batch_items,
    )
    while True:
        try:
            member = next(members)
        except StopIteration:
            return
        except ZipRejected as exc:
            raise ApiProblem(exc.status, "invalid_archive", str(exc)) from exc
        yield member.name, member.data


@dataclass(frozen=True)
class _Staged:
    """An item decoded, checked and written to its job folder; only its size stays in memory."""

    job_id: UUID
    name: str
    height: int
    width: int
    bit_depth: int


def _stage(
    ctx: AppContext, spec: BandSpec, models: ChosenModels, index: int, name: str, data: bytes
) -> _Staged:
    label = display_name(name, index)
    what = f"item {index} ({label})"
    decoded = decode_upload(ctx, data, what=what)
    check_restorable(decoded, what=what)
    check_band_for_image(spec, decoded.height, decoded.width)
    models.check_image(decoded.channels, what=what)
    job_id = uuid.uuid4()
    ctx.storage.write_new(job_id, "input.png", stored_input(decoded, data))
    return _Staged(job_id, label, decoded.height, decoded.width, decoded.bit_depth)


def _staged_items(
    ctx: AppContext,
    spec: BandSpec,
    models: ChosenModels,
    images: list[UploadFile],
    archive: UploadFile | None,
) -> Iterator[_Staged]:
    """Decode, check (band, the models' channels) and store every item, one at a time, so that
    memory holds one decoded image (many small uploads, or a small zip, can expand to far more
    pixels than fit at once)."""
    cap = ctx.settings.max_batch_items
    too_many = ApiProblem(422, "batch_too_large", f"more than {cap} images; the batch cap is {cap}")
    if len(images) > cap:
        raise too_many
    count = 0
    for index, (name, data) in enumerate(_uploads(ctx, images, archive)):
        if index >= cap:
            raise too_many
        yield _stage(ctx, spec, models, index, name, data)
        del data
        count += 1
    if not count:
        raise ApiProblem(422, "empty_batch", "send images (files) or an archive (zip)")


FIRST_CHUNK_ITEMS = 4


def chunks(ctx: AppContext, items: Iterable[_Staged], model_free: bool) -> Iterator[list[_Staged]]:
    """Micro-batching, as the items arrive: consecutive items of a numpy-only restoration
    (``model_free`` here: :attr:`RestoreParams.is_numpy_only`) of one bit depth grouped up to
    ``batch_chunk_items`` items and ``batch_chunk_pixels`` pixels per task, so a cheap restore
    does not pay the queue's per-task cost each time. Restorations that run a network (learned
    methods, ``auto`` given a model or reading with the shipped band reader) take seconds per
    item and go one per task, which
    keeps every worker busy and every item's time limit its own.

    The first chunks ramp up (``FIRST_CHUNK_ITEMS`` items, then twice as many each time, up to
    ``batch_chunk_items``): a worker starts on the first few items while the rest of the upload
    is still being staged, instead of waiting for a full chunk, and each next chunk is staged
    while the worker runs the one before."""
    s = ctx.settings
    chunk: list[_Staged] = []
    pixels = 0
    cap = min(FIRST_CHUNK_ITEMS, s.batch_chunk_items)
    for item in items:
        size = item.height * item.width
        if chunk and (pixels + size > s.batch_chunk_pixels or item.bit_depth != chunk[0].bit_depth):
            yield chunk
            chunk, pixels = [], 0
        chunk.append(item)
        pixels += size
        if not model_free or len(chunk) >= cap:  # full: send it now
            yield chunk
            chunk, pixels = [], 0
            cap = min(2 * cap, s.batch_chunk_items)
    if chunk:
        yield chunk


@router.get("", response_model=BatchList)
def list_batches(ctx: Ctx, caller: Caller, page: BatchesPage) -> BatchList:
    """This key's batches, newest first, with per-state counts (items: ``GET /v1/batches/{id}``)."""
    found, next_before = ctx.jobs.list_batches(caller.key_id, limit=page.limit, before=page.before)
    items = [batch_summary(batch_id, meta, states) for batch_id, meta, states in found]
    return BatchList(items=items, next_before=next_before)


@router.post(
    "", status_code=202, response_model=BatchPublic, responses=error_responses(400, 413, 415)
)
def create_batch(
    ctx: Ctx,
    caller: Caller,
    form: Annotated[RestoreForm, Form()],
    images: Annotated[list[UploadFile] | None, File(description="image files")] = None,
    archive: Annotated[UploadFile | None, File(description="zip of images")] = None,
) -> JSONResponse:
    """Items are staged and queued as they are read, so workers start on the first chunk while
    the rest is still being decoded. The batch is all or nothing: if an item is refused, the
    request fails (4xx) and the items already queued are cancelled ("batch refused: ...")."""
    params, models = restore_params(ctx, [], form)
    hook = check_callback(ctx, form.callback_url)
    spec = params.band
    batch_id = uuid.uuid4()
    queued: list[_Staged] = []
    staged = _staged_items(ctx, spec, models, images or [], archive)
    try:
        for chunk in chunks(ctx, _remember(staged, queued), params.is_numpy_only):
            depth = form.output_bit_depth or chunk[0].bit_depth
            fields = params.model_copy(update={"output_bit_depth": depth}).model_dump(mode="json")
            _send_chunk(ctx, chunk, caller.key_id, fields, hook, batch_id)
        ctx.jobs.create_batch(
            batch_id, caller.key_id, [s.job_id for s in queued], [s.name for s in queued]
        )
    except BaseException as exc:
        _abandon(ctx, queued, exc)
        raise
    body = _public(ctx, batch_id, caller.key_id)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/batches/{batch_id}"},
    )


def _remember(items: Iterator[_Staged], seen: list[_Staged]) -> Iterator[_Staged]:
    """``items``, each also appended to ``seen`` as it passes (what a rollback must undo)."""
    for item in items:
        seen.append(item)
        yield item


def _send_chunk(
    ctx: AppContext,
    chunk: list[_Staged],
    owner: str,
    fields: dict[str, Any],
    hook: str | None,
    batch_id: UUID,
) -> None:
    job = NewJob(JobKind.RESTORE, owner, fields, hook, batch_id)
    if len(chunk) == 1:
        enqueue(ctx, chunk[0].job_id, job, TASK_RESTORE, {})
    else:
        enqueue_chunk(ctx, [item.job_id for item in chunk], job, TASK_RESTORE_MANY)


def _abandon(ctx: AppContext, staged: list[_Staged], exc: BaseException) -> None:
    """Undo a refused batch: cancel its queued jobs (a running one stops at its next step) and
    delete the inputs of those that never started. Items staged but never queued have no job
    record; cancelling them is a no-op and their folders go too."""
    detail = exc.message if isinstance(exc, ApiProblem) else "the request failed"
    reason = f"batch refused: {detail}"[:500]
    for item in staged:
        try:
            outcome = ctx.jobs.request_cancel(item.job_id, reason)
        except Exception:  # Redis down: the job never ran or will find no record; keep undoing
            outcome = "missing"
        if outcome in ("cancelled", "missing"):
            ctx.storage.delete_job(item.job_id)


def _public(ctx: AppContext, batch_id: UUID, owner: str) -> BatchPublic:
    found = ctx.jobs.get_batch(batch_id, owner)
    if found is None:
        raise ApiProblem(404, "not_found", f"no batch {batch_id}")
    meta, job_ids, names = found
    return batch_public(batch_id, meta, job_ids, names, ctx.jobs.get_many(job_ids))


@router.get("/{batch_id}", response_model=BatchPublic)
def get_batch(ctx: Ctx, caller: Caller, batch_id: UUID) -> BatchPublic:
    return _public(ctx, batch_id, caller.key_id)


@router.delete("/{batch_id}", status_code=202, response_model=BatchPublic)
def cancel_batch(ctx: Ctx, caller: Caller, batch_id: UUID) -> JSONResponse:
    """Cancel every item that is not final yet (queued ones at once, running ones at their next
    step)."""
    batch = _public(ctx, batch_id, caller.key_id)
    for item in batch.items:
        if not item.state.terminal and ctx.jobs.request_cancel(item.job_id) == "cancelled":
            ctx.queue.revoke(item.job_id)
    body = _public(ctx, batch_id, caller.key_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=202)


@router.get(
    "/{batch_id}/result",
    responses={200: {"content": {"application/zip": {}}}, **error_responses(409)},
)
def get_batch_result(ctx: Ctx, caller: Caller, batch_id: UUID) -> Response:
    """A zip of every succeeded item's PNG plus ``manifest.json`` (per-item state and errors)."""
    batch = _public(ctx, batch_id, caller.key_id)
    if not all(item.state.terminal for item in batch.items):
        raise ApiProblem(409, "not_ready", f"batch is {batch.state.value}; wait for every item")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for item in batch.items:
            path = ctx.storage.job_file(item.job_id, "result.png")
            if item.state.value == "succeeded" and path.is_file():
                archive.write(path, arcname=f"{item.index:04d}-{item.name}.png")
        archive.writestr("manifest.json", json.dumps(batch.model_dump(mode="json"), indent=2))
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}.zip"'},
    )
