"""Band specs in the API: parse and validate with ``sagd_core.spectral`` (pydantic + numpy only).

Every failure becomes a 422 with the validator's message. A registered corruption type may stand in
for an explicit spec; exactly one of the two is required.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from sagd_core.spectral.bands import BandSpec, BandSpecError, parse_band_spec
from sagd_core.spectral.masks import MaskReport, _coordinates, _region_mask
from service.api.errors import ApiProblem
from service.jobs.registry import CorruptionTypes

MAX_SPEC_CHARS = 64 * 1024
_STRIP_ROWS = 64  # rows of the frequency grid evaluated at a time (2 MiB a row-strip at 4096)
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
    with the library's rule and words (``check_spec_for_shape``) on :func:`coverage`."""
    report = coverage(spec, height, width)
    problems = report.problems
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


def coverage(spec: BandSpec, height: int, width: int) -> MaskReport:
    """What ``spec`` covers at ``height × width``: ``sagd_core``'s ``mask_report``, computed a
    strip of rows at a time. The library's keeps the full float64 mask of every (spec, size) it
    has seen (128 MiB at 4096², plus several more while it is built): in the API, which only needs
    these three figures, that was most of an upload's memory. Cached by (spec, size)."""
    if height < 1 or width < 1:
        raise ApiProblem(422, "ill_posed_band", f"image size {width}x{height} is empty")
    return _coverage(spec.cache_key(), height, width)


@functools.lru_cache(maxsize=256)
def _coverage(key: str, height: int, width: int) -> MaskReport:
    spec = BandSpec.model_validate_json(key)
    fy, fx, rscale = _coordinates(spec, height, width)  # (H, 1) and (1, W)
    # M(-f) on the discrete grid is M at index (-k) mod N on both axes (masks._conjugate).
    fy_conj = fy[(-np.arange(height)) % height]
    fx_conj = fx[:, (-np.arange(width)) % width]
    soft = spec.softness
    total, covers_dc = 0.0, False
    holds_a_bin = [False] * len(spec.regions)
    for top in range(0, height, _STRIP_ROWS):
        rows = slice(top, min(height, top + _STRIP_ROWS))
        full = np.zeros((rows.stop - rows.start, width))
        for index, region in enumerate(spec.regions):
            mask = _region_mask(region, fy[rows], fx, rscale, soft)
            full = np.maximum(full, mask)
            full = np.maximum(full, _region_mask(region, fy_conj[rows], fx_conj, rscale, soft))
            if not holds_a_bin[index]:
                hard = mask if soft == 0 else _region_mask(region, fy[rows], fx, rscale, 0.0)
                holds_a_bin[index] = bool(np.any(hard > 0))
        total += float(full.sum())
        covers_dc = covers_dc or (top == 0 and bool(full[0, 0] > 0))
    return MaskReport(
        height=height,
        width=width,
        fraction=total / (height * width),
        covers_dc=covers_dc,
        empty_regions=tuple(i for i, held in enumerate(holds_a_bin) if not held),
    )
