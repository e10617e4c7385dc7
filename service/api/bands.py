"""Band specs in the API: parse and validate with ``sagd_core.spectral`` (pydantic + numpy only).

Every failure becomes a 422 with the validator's message. A registered corruption type may stand in
for an explicit spec; exactly one of the two is required.
"""

from __future__ import annotations

from typing import Any

from sagd_core.spectral.bands import BandSpec, BandSpecError, parse_band_spec
from service.api.band_coverage import coverage, fraction_is_decided
from service.api.errors import ApiProblem
from service.jobs.registry import CorruptionTypes

MAX_SPEC_CHARS = 64 * 1024
MAX_NUMBER_DIGITS = 4300  # Python's default limit on the digits of an integer it reads


def parse_band(raw: str | dict[str, Any]) -> BandSpec:
    """A validated :class:`BandSpec` or a 422 ``invalid_band_spec``."""
    if isinstance(raw, str) and len(raw) > MAX_SPEC_CHARS:
        raise ApiProblem(
            422, "invalid_band_spec", f"band_spec is longer than {MAX_SPEC_CHARS} characters"
        )
    try:
        return parse_band_spec(raw)
    except (BandSpecError, ValueError, TypeError) as exc:
        raise ApiProblem(422, "invalid_band_spec", _in_our_words(exc)) from exc


def _in_our_words(exc: Exception) -> str:
    """The validator's message, except Python's own about an integer too long to read (it
    tells the client to call ``sys.set_int_max_str_digits()``)."""
    message = str(exc)
    if "int_max_str_digits" in message or "integer string conversion" in message:
        return f"band_spec holds a number with more than {MAX_NUMBER_DIGITS} digits"
    return message or "invalid band spec"


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
    """Refuse a spec that is ill-posed (or empty) at this image size: 422 ``ill_posed_band``,
    with the library's rule and words (``check_spec_for_shape``) on the bounded
    :func:`~service.api.band_coverage.coverage` (an estimate within a hair of the one-half
    limit is left to the worker's exact check)."""
    if height < 1 or width < 1:
        raise ApiProblem(422, "ill_posed_band", f"image size {width}x{height} is empty")
    found = coverage(spec, height, width)
    report = found.report
    problems = report.problems
    if not fraction_is_decided(found):
        problems = [p for p in problems if "of the spectrum" not in p]
    if report.empty_regions:
        problems = [p for p in problems if "holds no" in p]
    elif problems and not spec.allow_ill_posed:
        problems = [*problems[:-1], problems[-1] + " (set allow_ill_posed to proceed anyway)"]
    else:
        return
    raise ApiProblem(
        422,
        "ill_posed_band",
        f"band spec is ill-posed for a {width}x{height} image: {'; '.join(problems)}",
    )
