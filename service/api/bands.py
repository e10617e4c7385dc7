"""Band specs in the API: parse and validate with ``sagd_core.spectral`` (pydantic + numpy only).

Every failure becomes a 422 with the validator's message. A registered corruption type may stand in
for an explicit spec; exactly one of the two is required.
"""

from __future__ import annotations

from typing import Any

from sagd_core.spectral.bands import BandSpec, BandSpecError, parse_band_spec
from sagd_core.spectral.masks import IllPosedBandError, check_spec_for_shape
from service.api.errors import ApiProblem
from service.jobs.registry import CorruptionTypes

MAX_SPEC_CHARS = 64 * 1024


def parse_band(raw: str | dict[str, Any]) -> BandSpec:
    """A validated :class:`BandSpec` or a 422 ``invalid_band_spec``."""
    if isinstance(raw, str) and len(raw) > MAX_SPEC_CHARS:
        raise ApiProblem(
            422, "invalid_band_spec", f"band_spec is longer than {MAX_SPEC_CHARS} characters"
        )
    try:
        return parse_band_spec(raw)
    except (BandSpecError, ValueError, TypeError) as exc:
        raise ApiProblem(422, "invalid_band_spec", str(exc) or "invalid band spec") from exc


def resolve_band(
    band_spec: str | None, corruption_type: str | None, types: CorruptionTypes
) -> BandSpec:
    """The spec sent inline, or the one registered under ``corruption_type``."""
    if (band_spec is None) == (corruption_type is None):
        raise ApiProblem(
            422, "invalid_band_spec", "send exactly one of band_spec (JSON) or corruption_type"
        )
    if band_spec is not None:
        return parse_band(band_spec)
    assert corruption_type is not None
    try:
        item = types.get(corruption_type)
    except ValueError:
        item = None
    if item is None:
        raise ApiProblem(
            422, "unknown_corruption_type", f"no corruption type named {corruption_type!r}"
        )
    return item.band


def check_band_for_image(spec: BandSpec, height: int, width: int) -> None:
    """Refuse a spec that is ill-posed (or empty) at this image size: 422 ``ill_posed_band``."""
    try:
        check_spec_for_shape(spec, height, width)
    except IllPosedBandError as exc:
        raise ApiProblem(
            422, "ill_posed_band", f"band spec is ill-posed for a {width}x{height} image: {exc}"
        ) from exc
