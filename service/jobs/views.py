"""Turn stored job and batch hashes into the public models (shared by API and webhooks), and
jobs into server-sent events (``GET /v1/jobs/{id}/events``)."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from service.jobs.contracts import (
    BatchItem,
    BatchPublic,
    BatchSummary,
    ErrorInfo,
    JobKind,
    JobPublic,
    JobState,
    Progress,
    Timings,
)


def _ts(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value else None


def _progress(job: dict[str, str]) -> Progress:
    step, total = int(job.get("step") or 0), int(job.get("total") or 0)
    fraction = 1.0 if job.get("state") == "succeeded" else (step / total if total else 0.0)
    return Progress(step=step, total=total, fraction=round(fraction, 4), message=job.get("message"))


def _error(job: dict[str, str]) -> ErrorInfo | None:
    if not job.get("error_code"):
        return None
    return ErrorInfo(code=job["error_code"], message=job.get("error_message", ""))


def job_public(job: dict[str, str], *, now: float | None = None) -> JobPublic:
    """The client's view of a job hash: progress, ETA from the running rate, timings, error."""
    now = time.time() if now is None else now
    created = float(job["created_at"])
    started = float(job["started_at"]) if job.get("started_at") else None
    finished = float(job["finished_at"]) if job.get("finished_at") else None
    state = JobState(job["state"])
    progress = _progress(job)
    eta = None
    if state is JobState.RUNNING and started is not None and progress.step > 0:
        rate = (now - started) / progress.step
        eta = round(max(0.0, rate * (progress.total - progress.step)), 3)
    queue_s = (started if started is not None else (finished or now)) - created
    run_s = ((finished or now) - started) if started is not None else None
    result: dict[str, Any] | None = json.loads(job["result"]) if job.get("result") else None
    job_id = UUID(job["id"])
    return JobPublic(
        id=job_id,
        kind=JobKind(job["kind"]),
        state=state,
        progress=progress,
        eta_s=eta,
        timings=Timings(
            created_at=datetime.fromtimestamp(created, UTC),
            started_at=_ts(job.get("started_at")),
            finished_at=_ts(job.get("finished_at")),
            queue_s=round(max(0.0, queue_s), 4),
            run_s=None if run_s is None else round(max(0.0, run_s), 4),
        ),
        error=_error(job),
        attempts=int(job.get("attempts") or 0),
        batch_id=UUID(job["batch_id"]) if job.get("batch_id") else None,
        result_url=f"/v1/jobs/{job_id}/result" if state is JobState.SUCCEEDED else None,
        result=result,
    )


def batch_public(
    batch_id: UUID,
    meta: dict[str, str],
    job_ids: list[str],
    names: list[str],
    jobs: list[dict[str, str] | None],
) -> BatchPublic:
    items = []
    for index, (job_id, name, job) in enumerate(zip(job_ids, names, jobs, strict=False)):
        if job is None:  # expired or lost: report it, never hide it
            items.append(
                BatchItem(
                    index=index,
                    name=name,
                    job_id=UUID(job_id),
                    state=JobState.FAILED,
                    progress=Progress(),
                    error=ErrorInfo(code="expired", message="job record expired"),
                )
            )
            continue
        items.append(
            BatchItem(
                index=index,
                name=name,
                job_id=UUID(job_id),
                state=JobState(job["state"]),
                progress=_progress(job),
                error=_error(job),
            )
        )
    state, counts = batch_state([item.state for item in items])
    return BatchPublic(
        id=batch_id,
        state=state,
        counts=counts,
        created_at=datetime.fromtimestamp(float(meta["created_at"]), UTC),
        items=items,
        result_url=f"/v1/batches/{batch_id}/result",
    )


def batch_state(states: list[JobState]) -> tuple[JobState, dict[str, int]]:
    """A batch's state and per-state counts from its items' states."""
    counts = Counter(s.value for s in states)
    if all(s.terminal for s in states):
        state = JobState.SUCCEEDED if counts["succeeded"] else JobState.FAILED
        if counts["cancelled"] == len(states):
            state = JobState.CANCELLED
    elif counts["running"] or counts["succeeded"] or counts["failed"]:
        state = JobState.RUNNING
    else:
        state = JobState.QUEUED
    return state, {s.value: counts.get(s.value, 0) for s in JobState}


def batch_summary(batch_id: str, meta: dict[str, str], states: list[str | None]) -> BatchSummary:
    """A batch without its items (listings); an expired item counts as failed, as in
    :func:`batch_public`."""
    state, counts = batch_state([JobState(s) if s else JobState.FAILED for s in states])
    return BatchSummary(
        id=UUID(batch_id),
        state=state,
        counts=counts,
        size=len(states),
        created_at=datetime.fromtimestamp(float(meta["created_at"]), UTC),
        url=f"/v1/batches/{batch_id}",
        result_url=f"/v1/batches/{batch_id}/result",
    )


# --------------------------------------------------------------------------------------------
# Server-sent events (text/event-stream): one frame per change of a job
# --------------------------------------------------------------------------------------------
#: The event names of a job's stream: ``state`` (the first snapshot and every change of state),
#: ``progress`` (a new step or message while the state stays), ``timeout`` (the stream reached
#: its maximum duration: reconnect to go on), ``error`` (the record expired or the job store is
#: unavailable), ``preview`` (on request: a running restoration wrote a new low-resolution
#: preview, :func:`preview_event`). The stream ends after the ``state`` event of a final state.
SSE_EVENTS = ("state", "progress", "preview", "timeout", "error")


def sse_frame(event: str, data: Any, *, event_id: int | None = None) -> bytes:
    """One server-sent event: ``event:``, an optional ``id:``, and ``data`` as one line of JSON
    (JSON escapes newlines, so a message can never end the frame early)."""
    if event not in SSE_EVENTS:
        raise ValueError(f"not an event of a job's stream: {event}")
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    return ("\n".join(lines) + "\n\n").encode()


def sse_comment(text: str) -> bytes:
    """A comment line (``: text``): clients ignore it; it keeps proxies from closing an idle
    stream."""
    return f": {' '.join(text.splitlines())}\n\n".encode()


def sse_retry(milliseconds: int) -> bytes:
    """The reconnection delay a client should wait after the stream drops."""
    return f"retry: {int(milliseconds)}\n\n".encode()


def job_event(job: JobPublic, previous: JobPublic | None) -> str | None:
    """Which event ``job`` makes after ``previous`` (None: the first look), or None if nothing
    a client follows changed (ETA alone does not count: it moves on every look)."""
    if previous is None or job.state != previous.state:
        return "state"
    now, before = job.progress, previous.progress
    if (now.step, now.total, now.message) != (before.step, before.total, before.message):
        return "progress"
    return None


@dataclass(frozen=True)
class PreviewStamp:
    """One preview file as the stream saw it: what tells a new one from the last (the file is
    replaced by a rename, so a new one has a new inode and modification time) and its size in
    pixels (from the PNG header)."""

    inode: int
    mtime_ns: int
    width: int
    height: int


def png_size(header: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the first 24 bytes of a PNG (None: not a PNG header)."""
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        return None
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def preview_event(job_id: UUID, stamp: PreviewStamp, number: int) -> dict[str, Any]:
    """The data of a ``preview`` event: the ``number``-th preview this stream announces, its
    size and where to fetch it (``GET /v1/jobs/{id}/preview``; the query only defeats caches)."""
    return {
        "id": str(job_id),
        "number": number,
        "width": stamp.width,
        "height": stamp.height,
        "url": f"/v1/jobs/{job_id}/preview?v={stamp.mtime_ns}",
    }
