"""``/healthz`` (process up), ``/readyz`` (broker reachable, a worker alive), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request

from service.api.deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "broker or workers missing"}})
def readyz(ctx: Ctx) -> JSONResponse:
    try:
        broker = bool(ctx.redis.ping())
    except Exception:  # any connection failure means "not ready", never a 500
        broker = False
    workers = ctx.queue.ping_workers(timeout=1.0) if broker else 0
    ready = broker and workers > 0
    body = {"status": "ready" if ready else "not ready", "broker": broker, "workers": workers}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
