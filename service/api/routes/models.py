"""``/v1/models``: the model registry (versions, band spec, noise, schedule, data hash, scores)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.api.deps import Caller, Ctx
from service.api.errors import ApiProblem, v1_router
from service.jobs.contracts import ModelPublic
from service.jobs.registry import ModelNotFoundError

router = v1_router("models", 400, 404)


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
