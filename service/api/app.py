"""The FastAPI application: ``create_app()`` wires settings, middleware, errors and routers.

Run with ``uvicorn service.api.app:app`` (or ``make serve`` for the embedded stack). This module and
everything it imports stay free of torch: tasks are sent to the workers by name.
"""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from service.api.context import AppContext
from service.api.errors import install_error_handlers
from service.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from service.api.routes import (
    analyze,
    batches,
    corruption_types,
    health,
    jobs,
    models,
    restorations,
    trainings,
)
from service.api.web import routes as web
from service.jobs.contracts import QUEUES, JobKind
from service.jobs.metrics import RedisCollector
from service.jobs.queue import TaskQueue
from service.settings import Settings, get_settings

logger = logging.getLogger(__name__)
MULTIPART_SLACK = 64 * 1024  # form fields and part headers around the file itself

DESCRIPTION = """Image restoration with spectrally anisotropic Gaussian diffusion (SAGD).

Submit an image and a band spec, get `202` and a job `Location`, poll it (or get a signed
webhook), download the result. Authenticate with `Authorization: Bearer <key>` or `X-API-Key`.
Errors are JSON `{code, message, request_id}`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    queue: TaskQueue | None = None,
    client: redis.Redis | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    ctx = AppContext.build(settings, queue=queue, client=client)
    app = FastAPI(title="sagd", version="1", description=DESCRIPTION)
    app.state.ctx = ctx
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RedisCollector(ctx.redis, QUEUES, [k.value for k in JobKind]))
    app.state.metrics = registry

    def body_limit(path: str) -> int:
        if path.startswith(("/v1/batches", "/v1/trainings")):
            return settings.max_batch_bytes + MULTIPART_SLACK
        return settings.max_upload_bytes + MULTIPART_SLACK

    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    for module in (
        restorations,
        jobs,
        batches,
        corruption_types,
        trainings,
        models,
        analyze,
        health,
        web,
    ):
        app.include_router(module.router)
    app.include_router(models.methods_router)
    if not settings.auth_enabled:
        logger.warning("authentication is disabled (development mode)")
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn service.api.app:app` builds the app on first access, not at import time, so that
    # importing this module (tests, tooling) has no side effects.
    if name == "app":
        return create_app()
    raise AttributeError(name)
