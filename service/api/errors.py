"""Errors as JSON ``{code, message, request_id}``: no tracebacks or server paths in responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import redis
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.jobs.contracts import ApiError

logger = logging.getLogger(__name__)
REQUEST_ID_KEY = "sagd.request_id"

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    501: "not_implemented",
    503: "unavailable",
}


_DESCRIPTIONS = {
    400: "malformed request body",
    401: "missing or invalid API key",
    404: "not found (another key's resources read as missing)",
    409: "conflicts with the current state",
    413: "body, file, archive or pixel count over its limit",
    415: "not a PNG, JPEG, TIFF or WebP file",
    422: "invalid request; the message says why",
    429: "rate limit of the key exceeded (see Retry-After)",
    501: "not available with the running workers",
    503: "job store or queue unavailable (see Retry-After)",
}
#: Statuses every authenticated route can answer.
V1_ERRORS = (401, 422, 429, 503)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: these statuses carry an :class:`ApiError` JSON body."""
    return {s: {"model": ApiError, "description": _DESCRIPTIONS[s]} for s in statuses}


def v1_router(resource: str, *statuses: int, tag: str | None = None) -> APIRouter:
    """The router of ``/v1/{resource}``, tagged ``tag`` (default: the resource), documenting the
    errors every authenticated route can answer (:data:`V1_ERRORS`) and ``statuses``."""
    return APIRouter(
        prefix=f"/v1/{resource}",
        tags=[tag or resource],
        responses=error_responses(*V1_ERRORS, *statuses),
    )


class ApiProblem(Exception):
    """An expected failure with an HTTP status, a stable code and a readable message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


def request_id(request: Request) -> str | None:
    value = request.scope.get(REQUEST_ID_KEY)
    return str(value) if value else None


def problem_response(request: Request, problem: ApiProblem) -> JSONResponse:
    rid = request_id(request)
    body = ApiError(
        code=problem.code, message=problem.message, request_id=rid, details=problem.details
    )
    out_headers = dict(problem.headers)
    if rid:
        out_headers["X-Request-ID"] = rid
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=problem.status, headers=out_headers
    )


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: never echo the input (it may be a file's bytes).
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ][:20]


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(request, exc)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":  # Starlette's: no route matched
        message = "no such endpoint; see /docs for the API's paths"
    return problem_response(
        request, ApiProblem(exc.status_code, code, message, headers=exc.headers)
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
    problem = ApiProblem(422, "validation_error", summary or "invalid request", details=details)
    return problem_response(request, problem)


async def _on_redis(request: Request, exc: Exception) -> JSONResponse:
    logger.error("Redis unavailable (request id %s): %s", request_id(request), exc)
    return problem_response(
        request,
        ApiProblem(
            503,
            "unavailable",
            "the job store is unavailable; retry later",
            headers={"Retry-After": "5"},
        ),
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error (request id %s)", request_id(request), exc_info=exc)
    message = "internal error; quote the request id when reporting it"
    return problem_response(request, ApiProblem(500, "internal_error", message))


def install_error_handlers(app: FastAPI) -> None:
    """Every failure answered as JSON ``{code, message, request_id}``. A path that matches no
    route is a JSON 404 too, never a redirect: Starlette's ``redirect_slashes`` would answer
    ``/v1/corruption-types/..%2f`` (``../`` once decoded) with a 307 to another path and an
    empty, non-JSON body."""
    app.router.redirect_slashes = False
    app.add_exception_handler(ApiProblem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(redis.RedisError, _on_redis)
    app.add_exception_handler(Exception, _on_unexpected)
