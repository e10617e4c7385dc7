"""``/v1/jobs/{id}``: status, results and cancellation. Another key's job is a 404."""

from __future__ import annotations

import json
from typing import Annotated, Literal
from uuid import UUID

from fastapi import Query
from fastapi.responses import FileResponse, JSONResponse, Response

from service.api.deps import Caller, Ctx, JobsPage
from service.api.errors import ApiProblem, error_responses, v1_router
from service.jobs.contracts import JobList, JobPublic
from service.jobs.views import job_public

router = v1_router("jobs", 404)

Part = Literal["image", "report", "uncertainty"]


def owned_job(ctx: Ctx, job_id: UUID, owner: str) -> dict[str, str]:
    job = ctx.jobs.get_owned(job_id, owner)
    if job is None:
        raise ApiProblem(404, "not_found", f"no job {job_id}")
    return job


@router.get("", response_model=JobList)
def list_jobs(ctx: Ctx, caller: Caller, page: JobsPage) -> JobList:
    """This key's jobs (batch items included), newest first, while their records last."""
    jobs, next_before = ctx.jobs.list_jobs(caller.key_id, limit=page.limit, before=page.before)
    return JobList(items=[job_public(job) for job in jobs], next_before=next_before)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(ctx: Ctx, caller: Caller, job_id: UUID) -> JobPublic:
    return job_public(owned_job(ctx, job_id, caller.key_id))


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
