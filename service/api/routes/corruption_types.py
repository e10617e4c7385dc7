"""``/v1/corruption-types``: named band specs, usable by restorations and trainings."""

from __future__ import annotations

from service.api.bands import parse_band
from service.api.deps import Caller, Ctx
from service.api.errors import ApiProblem, error_responses, v1_router
from service.jobs.contracts import CorruptionTypeCreate, CorruptionTypePublic
from service.jobs.registry import ConflictError

router = v1_router("corruption-types", 404, tag="corruption types")


@router.post(
    "", status_code=201, response_model=CorruptionTypePublic, responses=error_responses(400, 409)
)
def create_corruption_type(
    ctx: Ctx, caller: Caller, body: CorruptionTypeCreate
) -> CorruptionTypePublic:
    spec = parse_band(body.band)
    try:
        return ctx.corruption_types.create(body.name, spec, body.description)
    except ConflictError as exc:
        raise ApiProblem(409, "conflict", str(exc)) from exc


@router.get("", response_model=list[CorruptionTypePublic])
def list_corruption_types(ctx: Ctx, caller: Caller) -> list[CorruptionTypePublic]:
    return ctx.corruption_types.list()


@router.get("/{name}", response_model=CorruptionTypePublic)
def get_corruption_type(ctx: Ctx, caller: Caller, name: str) -> CorruptionTypePublic:
    try:
        item = ctx.corruption_types.get(name)
    except ValueError:
        item = None
    if item is None:
        raise ApiProblem(404, "not_found", f"no corruption type {name!r}")
    return item
