"""``/healthz`` (process up), ``/readyz`` (broker reachable, a worker alive), ``/metrics``.

``/readyz`` says why it is not ready (``reason``) and, once ready again, what the last outage was
(``last_outage``: when it was first seen and how long it lasted), as seen by this API process; the
change is logged both ways.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request

from service.api.deps import Ctx

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)

NO_BROKER = "Redis (the queue and job store) does not answer; jobs cannot be queued or read"
NO_WORKER = "no worker answered a ping; jobs are queued but nothing runs them"


@dataclass
class Outages:
    """What ``/readyz`` has seen: the outage under way (if any) and the last one that ended."""

    since: float | None = None  # epoch seconds when this process first saw it not ready
    reason: str | None = None
    last: dict[str, Any] | None = None

    def record(self, reason: str | None) -> None:
        now = time.time()
        if reason is not None:
            if self.since is None:  # the outage is named after what was first seen missing
                logger.warning("not ready: %s", reason)
                self.since, self.reason = now, reason
        elif self.since is not None:
            lasted = round(now - self.since, 1)
            self.last = {"started_at": self.since, "lasted_s": lasted, "reason": self.reason}
            logger.warning("ready again after %.1f s (%s)", lasted, self.reason)
            self.since, self.reason = None, None


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "broker or workers missing"}})
def readyz(ctx: Ctx, request: Request) -> JSONResponse:
    try:
        broker = bool(ctx.redis.ping())
    except Exception:  # any connection failure means "not ready", never a 500
        broker = False
    workers = ctx.queue.ping_workers(timeout=1.0) if broker else 0
    ready = broker and workers > 0
    reason = None if ready else (NO_WORKER if broker else NO_BROKER)
    outages: Outages | None = getattr(request.app.state, "outages", None)
    if outages is None:
        outages = request.app.state.outages = Outages()
    outages.record(reason)
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "broker": broker,
        "workers": workers,
    }
    if reason is not None:
        body["reason"] = reason
        body["not_ready_since"] = outages.since
    if outages.last is not None:
        body["last_outage"] = outages.last
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
