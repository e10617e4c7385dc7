"""``POST /v1/analyze``: spectrum summary and a proposed band spec for an image.

The analysis runs on a worker (task ``sagd.analyze``). The API waits up to
``SAGD_ANALYZE_WAIT_S`` for it and answers 200 with the analysis, else 202 with the job's
``Location``. Workers report what their ``sagd_core`` can do in Redis; if none can analyze,
the answer is 501.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated

from fastapi import File, UploadFile
from fastapi.responses import JSONResponse

from service.api.deps import Caller, Ctx
from service.api.errors import ApiProblem, error_responses, v1_router
from service.api.submit import accepted, decode_upload, enqueue, get_created, read_upload
from service.jobs.capabilities import worker_capabilities
from service.jobs.contracts import TASK_ANALYZE, AnalyzeParams, JobKind
from service.jobs.images import stored_input
from service.jobs.jobstore import NewJob

router = v1_router("analyze", 400, 413, 415)


@router.post(
    "",
    responses={
        200: {"description": "the analysis"},
        202: {"description": "still running; poll the Location"},
        **error_responses(501),
    },
)
def analyze(
    ctx: Ctx,
    caller: Caller,
    image: Annotated[UploadFile, File(description="PNG, JPEG, TIFF or WebP")],
) -> JSONResponse:
    if not worker_capabilities(ctx.redis).get("analyze"):
        raise ApiProblem(
            501,
            "not_implemented",
            "no running worker can analyze images yet (sagd_core.analysis.analyze is missing)",
        )
    data = read_upload(image, ctx.settings.max_upload_bytes, what="image")
    decoded = decode_upload(ctx, data)
    job_id = uuid.uuid4()
    new = NewJob(JobKind.ANALYZE, caller.key_id, AnalyzeParams().model_dump(mode="json"))
    enqueue(ctx, job_id, new, TASK_ANALYZE, {"input.png": stored_input(decoded, data)})
    deadline = time.monotonic() + ctx.settings.analyze_wait_s
    while time.monotonic() < deadline:
        job = get_created(ctx, job_id)
        if job["state"] == "succeeded":
            return JSONResponse(json.loads(job.get("result") or "{}"))
        if job["state"] in ("failed", "cancelled"):
            raise ApiProblem(422, "analysis_failed", job.get("error_message") or "analysis failed")
        time.sleep(0.05)
    return accepted(get_created(ctx, job_id))
