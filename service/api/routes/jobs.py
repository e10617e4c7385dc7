"""``/v1/jobs``: the caller's jobs (filtered by state and kind), a job's status, its live events,
results and cancellation. Another key's job is a 404.

``GET /v1/jobs/{id}/events`` is a server-sent event stream (``text/event-stream``; the events are
:data:`service.jobs.views.SSE_EVENTS`). It is an async generator that looks at the job's record
every :data:`POLL_S` seconds; each look is one Redis round trip on the thread pool
(``run_in_threadpool``: the app's Redis client is sync), so a follower holds a thread for a
fraction of a millisecond per look, never for its whole stream, and a Redis that hangs stalls
that look, not the event loop. A stream sends a keep-alive comment after :data:`KEEPALIVE_S`
seconds without an event, ends after the final state, and ends anyway (event ``timeout``) after
:data:`MAX_STREAM_S` seconds; a client that disconnects cancels its generator.

With ``?preview=1`` a restoration's stream also announces each new low-resolution preview that
its worker writes while a learned method samples (``worker.previews``): at each look, the
preview file is stat'ed and its PNG header read (one small read on the thread pool), and a
``preview`` event carries its size and URL, ``GET /v1/jobs/{id}/preview``. A URL rather than the
image inline: the events stay small for every follower, and only a client that shows the image
fetches it, once, with the same key and ownership rules as the job's other routes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal
from uuid import UUID

import anyio
import redis
from fastapi import Query
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from service.api.deps import Caller, Ctx, JobsPage, Page
from service.api.errors import ApiProblem, error_responses, v1_router
from service.jobs.contracts import JobKind, JobList, JobPublic, JobState
from service.jobs.storage import PREVIEW_FILE
from service.jobs.views import (
    PreviewStamp,
    job_event,
    job_public,
    png_size,
    preview_event,
    sse_comment,
    sse_frame,
    sse_retry,
)

router = v1_router("jobs", 404)

Part = Literal["image", "report", "uncertainty"]

#: Seconds between two looks at a followed job's record.
POLL_S = 0.25
#: Seconds without an event after which a stream sends a keep-alive comment.
KEEPALIVE_S = 15.0
#: Seconds after which a stream ends (event ``timeout``) even if its job has not.
MAX_STREAM_S = 600.0
#: The reconnection delay (ms) a stream asks of clients after a drop.
RETRY_MS = 2000
#: Index entries a filtered listing reads at most per request (then it returns a shorter page
#: with ``next_before`` set, so that a rare filter never costs an unbounded scan).
FILTER_SCAN_MAX = 2000
_SCAN_CHUNK = 200


def owned_job(ctx: Ctx, job_id: UUID, owner: str) -> dict[str, str]:
    job = ctx.jobs.get_owned(job_id, owner)
    if job is None:
        raise ApiProblem(404, "not_found", f"no job {job_id}")
    return job


def filtered_jobs(
    ctx: Ctx, owner: str, page: Page, states: set[str], kinds: set[str]
) -> tuple[list[dict[str, str]], float | None]:
    """The owner's jobs in one of ``states`` and of one of ``kinds`` (each: any, if empty),
    newest first, at most ``page.limit``, and the next page's cursor (None: no more). Reads the
    owner's index in chunks, at most :data:`FILTER_SCAN_MAX` entries per call."""
    if not states and not kinds:
        return ctx.jobs.list_jobs(owner, limit=page.limit, before=page.before)
    found: list[dict[str, str]] = []
    cursor, scanned = page.before, 0
    while scanned < FILTER_SCAN_MAX:
        chunk, next_cursor = ctx.jobs.list_jobs(owner, limit=_SCAN_CHUNK, before=cursor)
        scanned += _SCAN_CHUNK
        for job in chunk:
            if (not states or job.get("state") in states) and (
                not kinds or job.get("kind") in kinds
            ):
                found.append(job)
                if len(found) == page.limit:
                    return found, float(job["created_at"])
        if next_cursor is None:
            return found, None
        cursor = next_cursor
    return found, cursor


@router.get("", response_model=JobList)
def list_jobs(
    ctx: Ctx,
    caller: Caller,
    page: JobsPage,
    state: Annotated[
        list[JobState] | None, Query(description="only jobs in these states (repeatable)")
    ] = None,
    kind: Annotated[
        list[JobKind] | None, Query(description="only jobs of these kinds (repeatable)")
    ] = None,
) -> JobList:
    """This key's jobs (batch items included), newest first, while their records last; with
    ``state`` and/or ``kind``, only those (a filtered page may hold fewer than ``limit`` jobs
    while ``next_before`` is set: follow it until it is null)."""
    states = {s.value for s in state or ()}
    kinds = {k.value for k in kind or ()}
    jobs, next_before = filtered_jobs(ctx, caller.key_id, page, states, kinds)
    return JobList(items=[job_public(job) for job in jobs], next_before=next_before)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(ctx: Ctx, caller: Caller, job_id: UUID) -> JobPublic:
    return job_public(owned_job(ctx, job_id, caller.key_id))


def read_preview_stamp(path: Path) -> PreviewStamp | None:
    """The preview file at ``path`` as a :class:`PreviewStamp` (None: none yet, or not a PNG)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        info = os.fstat(fd)
        size = png_size(os.read(fd, 24))
    finally:
        os.close(fd)
    if size is None:
        return None
    return PreviewStamp(info.st_ino, info.st_mtime_ns, *size)


async def job_event_stream(
    load: Callable[[], Awaitable[dict[str, str] | None]],
    *,
    poll_s: float,
    keepalive_s: float,
    max_s: float,
    clock: Callable[[], float] = time.monotonic,
    look_preview: Callable[[], Awaitable[PreviewStamp | None]] | None = None,
) -> AsyncIterator[bytes]:
    """The frames of one job's event stream (see the module docstring); ``load`` reads the
    job's record (None once it is gone); ``look_preview`` (previews asked for) its preview
    file's stamp, looked at after the record while the job is not final."""
    start = last_sent = clock()
    previous: JobPublic | None = None
    shown: PreviewStamp | None = None
    previews = 0
    sequence = 0
    yield sse_retry(RETRY_MS)
    while True:
        try:
            record = await load()
        except redis.RedisError:
            message = "the job store is unavailable: reconnect later"
            yield sse_frame("error", {"code": "unavailable", "message": message})
            return
        if record is None:
            yield sse_frame("error", {"code": "not_found", "message": "the job record expired"})
            return
        job = job_public(record)
        event = job_event(job, previous)
        if event is not None:
            sequence += 1
            yield sse_frame(event, job.model_dump(mode="json"), event_id=sequence)
            last_sent, previous = clock(), job
        if job.state.terminal:
            return
        stamp = await look_preview() if look_preview is not None else None
        if stamp is not None and stamp != shown:
            sequence, previews, shown = sequence + 1, previews + 1, stamp
            yield sse_frame("preview", preview_event(job.id, stamp, previews), event_id=sequence)
            last_sent = clock()
        if clock() - start >= max_s:
            message = f"the stream ended after {max_s:g} s; reconnect to follow the job"
            yield sse_frame("timeout", {"code": "stream_timeout", "message": message})
            return
        if clock() - last_sent >= keepalive_s:
            yield sse_comment("keep-alive")
            last_sent = clock()
        await anyio.sleep(poll_s)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the job's events"}},
)
async def job_events(
    ctx: Ctx,
    caller: Caller,
    job_id: UUID,
    preview: Annotated[
        bool,
        Query(description="also send a `preview` event for each new preview of a restoration"),
    ] = False,
) -> StreamingResponse:
    """Follow a job live (server-sent events). ``state`` and ``progress`` events carry the job
    as ``GET /v1/jobs/{id}`` shows it (progress fraction, ``eta_s``, at the end the result
    summary); the stream ends after the final state, or with a ``timeout`` event after its
    maximum duration (reconnect then); ``error``: the record expired or the store is down.
    With ``preview=true``, a restoration by a learned method (``sagd``, ``ddnm``) also sends a
    ``preview`` event (``number``, ``width``, ``height``, ``url``) for each new low-resolution
    preview of its current estimate (at most about one a second, 20 per job)."""
    job = await run_in_threadpool(owned_job, ctx, job_id, caller.key_id)  # a 404 before any stream

    async def load() -> dict[str, str] | None:
        return await run_in_threadpool(ctx.jobs.get_owned, job_id, caller.key_id)

    path = ctx.storage.job_file(job_id, PREVIEW_FILE)

    async def look_preview() -> PreviewStamp | None:
        return await run_in_threadpool(read_preview_stamp, path)

    frames = job_event_stream(
        load,
        poll_s=POLL_S,
        keepalive_s=KEEPALIVE_S,
        max_s=MAX_STREAM_S,
        look_preview=look_preview if preview and job["kind"] == "restore" else None,
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


@router.get(
    "/{job_id}/preview",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the latest preview"}},
)
def get_preview(ctx: Ctx, caller: Caller, job_id: UUID) -> Response:
    """The latest low-resolution preview (8-bit PNG, longest side at most 128 px) of a
    restoration that a learned method is running; 404 while there is none yet (and for other
    jobs). Announced by the ``preview`` events of ``GET /v1/jobs/{id}/events?preview=true``."""
    job = owned_job(ctx, job_id, caller.key_id)
    if job["kind"] != "restore":
        raise ApiProblem(404, "not_found", f"a {job['kind']} job has no preview")
    try:  # read whole: the worker may replace the file at any moment (a rename)
        data = ctx.storage.job_file(job_id, PREVIEW_FILE).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise ApiProblem(404, "not_found", "no preview yet") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get(
    "/{job_id}/result",
    responses={
        200: {"content": {"image/png": {}, "application/json": {}}},
        **error_responses(409),
    },
)
def get_result(
    ctx: Ctx,
    caller: Caller,
    job_id: UUID,
    part: Annotated[
        Part, Query(description="image (PNG), report (JSON), uncertainty (PNG)")
    ] = "image",
) -> Response:
    job = owned_job(ctx, job_id, caller.key_id)
    if job["state"] != "succeeded":
        raise ApiProblem(
            409, "not_ready", f"job is {job['state']}; results exist only for succeeded jobs"
        )
    if job["kind"] != "restore":  # training and analysis results are JSON
        if part != "report":
            raise ApiProblem(404, "not_found", f"a {job['kind']} job has only part=report")
        return JSONResponse(json.loads(job.get("result") or "{}"))
    name = {"image": "result.png", "report": "report.json", "uncertainty": "uncertainty.png"}[part]
    path = ctx.storage.job_file(job_id, name)
    if not path.is_file():
        what = "no uncertainty map (samples=1)" if part == "uncertainty" else "result expired"
        raise ApiProblem(404, "not_found", what)
    media = "application/json" if name.endswith(".json") else "image/png"
    return FileResponse(path, media_type=media, filename=f"{job_id}-{name}")


@router.delete(
    "/{job_id}", status_code=202, response_model=JobPublic, responses=error_responses(409)
)
def cancel_job(ctx: Ctx, caller: Caller, job_id: UUID) -> JSONResponse:
    """Cancel: a queued job is cancelled at once; a running one stops at its next step."""
    owned_job(ctx, job_id, caller.key_id)
    outcome = ctx.jobs.request_cancel(job_id)
    if outcome == "missing":
        raise ApiProblem(404, "not_found", f"no job {job_id}")
    if outcome == "terminal":
        job = owned_job(ctx, job_id, caller.key_id)
        raise ApiProblem(409, "already_finished", f"job is already {job['state']}")
    if outcome == "cancelled":
        ctx.queue.revoke(job_id)
    job = owned_job(ctx, job_id, caller.key_id)
    return JSONResponse(job_public(job).model_dump(mode="json"), status_code=202)
