"""``/v1/models``: the model registry (versions, band spec, noise, schedule, data hash, scores);
``/v1/methods``: the restore methods, what each does, whether it needs a model and whether it
takes one.

``sagd_core.restore.request`` declares the methods without importing torch, so the API process
stays free of it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sagd_core.restore.request import METHOD_SUMMARIES, METHODS, MODEL_FREE_METHODS
from service.api.deps import Caller, Ctx
from service.api.errors import ApiProblem, v1_router
from service.jobs.capabilities import worker_capabilities
from service.jobs.contracts import ModelPublic, takes_model
from service.jobs.registry import ModelNotFoundError

router = v1_router("models", 400, 404)
methods_router = v1_router("methods")


class MethodInfo(BaseModel):
    name: str
    summary: str = Field(description="what the method does, in one line")
    needs_model: bool = Field(
        description="true: a learned method, it always runs a model (SAGD_DEFAULT_MODEL when "
        "model= is not sent) and samples with the schedule; false: needs no registered model "
        "and no schedule (notch and classical run on numpy alone; auto runs the band reader "
        "that ships with the package where it applies)"
    )
    takes_model: bool = Field(
        description="whether model= is accepted: true for the learned methods and for auto "
        "(optional: without model= it uses no registered model; with a band model trained on "
        "noise of its band's shape it runs that model, else the shipped band reader or the "
        "classical tier, and the report says which); "
        "false (notch, classical): model= is refused (422 model_not_used)"
    )
    available: bool | None = Field(
        description="whether the running workers announce it (null: no worker has started yet)"
    )


@methods_router.get("", response_model=list[MethodInfo])
def list_methods(ctx: Ctx, caller: Caller) -> list[MethodInfo]:
    """The restore methods, ``auto`` first (the default), with a one-line summary each."""
    announced = worker_capabilities(ctx.redis).get("methods")
    known = set(announced) if isinstance(announced, list) else None
    return [
        MethodInfo(
            name=name,
            summary=METHOD_SUMMARIES[name],
            needs_model=name not in MODEL_FREE_METHODS,
            takes_model=takes_model(name),
            available=None if known is None else name in known,
        )
        for name in METHODS
    ]


class DefaultVersion(BaseModel):
    version: int = Field(ge=1)


@router.get("", response_model=list[ModelPublic])
def list_models(ctx: Ctx, caller: Caller) -> list[ModelPublic]:
    return ctx.models.list_models()


@router.get("/{name}", response_model=ModelPublic)
def get_model(ctx: Ctx, caller: Caller, name: str) -> ModelPublic:
    for model in ctx.models.list_models():
        if model.name == name:
            return model
    raise ApiProblem(404, "not_found", f"no model named {name!r}")


@router.put("/{name}/default-version", response_model=ModelPublic)
def set_default_version(ctx: Ctx, caller: Caller, name: str, body: DefaultVersion) -> ModelPublic:
    """Make ``version`` the default; running workers pick it up on their next job."""
    try:
        ctx.models.set_default(name, body.version)
    except (ModelNotFoundError, ValueError) as exc:
        raise ApiProblem(404, "not_found", str(exc)) from exc
    return get_model(ctx, caller, name)
