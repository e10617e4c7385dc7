"""The band specification: which frequency regions a user believes corrupted (DESIGN.md §2).

A :class:`BandSpec` is what users send (JSON). It is validated here with pydantic and numpy only,
so the API process can check specs without importing torch. It becomes a mask ``M(f) ∈ [0, 1]``
(1 = corrupted, not trusted) in :mod:`sagd_core.spectral.masks`.

Region kinds (all made symmetric, ``M(f) = M(-f)``):

- ``annulus {low, high}``: radial band ``low ≤ r < high`` (half-open, DESIGN.md §1);
- ``notch {fy, fx, radius}``: disk ``|f − c| < radius``; the conjugate ``−c`` is added
  automatically;
- ``wedge {angle_deg, tolerance_deg, low, high}``: frequencies within ``tolerance_deg`` of the line
  through DC at ``angle_deg`` (measured from the +fx axis towards +fy), with ``low ≤ r < high``.
  Stripes that vary along direction θ put their energy on the line at θ;
- ``box {fy: [lo, hi], fx: [lo, hi]}``: axis-aligned ``lo ≤ f < hi`` plus its mirror image.

Every region may say what it holds (``"model": "sinusoid" | "stripes" | "noise"``) for the
classical tier; by default that follows the geometry (a notch holds a sinusoid, a narrow wedge
along an axis holds stripes, anything else band-limited noise).

Units: ``cycles/pixel`` (default) or ``cycles/image`` (``cycles/pixel = cycles/image / N`` per
axis, N = H for fy and W for fx). ``radius: normalized`` measures radii as ``r / (√2/2)`` (P1's
convention); it is only meaningful in cycles/pixel.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Units = Literal["cycles/pixel", "cycles/image"]
RadiusConvention = Literal["absolute", "normalized"]

MAX_REGIONS = 64
#: Largest coordinate accepted in cycles/image (a 65,536-pixel side).
_MAX_CYCLES_PER_IMAGE = 65_536.0


#: What a region holds, for the classical tier (``None``: follow the geometry).
RegionModel = Literal["sinusoid", "stripes", "noise"]


class _Region(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: RegionModel | None = Field(
        default=None,
        exclude_if=lambda v: v is None,  # a spec without it reads (and dumps) as before
        description="what the region holds: 'sinusoid' (periodic interference), 'stripes' "
        "(row/column offsets) or 'noise' (band-limited noise); default: from the geometry",
    )


class RadialRange(BaseModel):
    """A model with a radial range ``[low, high)`` (its own fields): ``low < high`` is checked."""

    range_name: ClassVar[str]  # the model in the error message
    if TYPE_CHECKING:
        low: float
        high: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.high <= self.low:
            raise ValueError(f"{self.range_name} needs low < high, got [{self.low}, {self.high})")
        return self


class Annulus(_Region, RadialRange):
    range_name = "annulus"
    kind: Literal["annulus"] = "annulus"
    low: float = Field(ge=0.0, description="inner radius (inclusive)")
    high: float = Field(gt=0.0, description="outer radius (exclusive)")


class Notch(_Region):
    kind: Literal["notch"] = "notch"
    fy: float
    fx: float
    radius: float = Field(gt=0.0, description="disk radius around (fy, fx) and its conjugate")


class Wedge(_Region, RadialRange):
    range_name = "wedge"
    kind: Literal["wedge"] = "wedge"
    angle_deg: float = Field(ge=-360.0, le=360.0)
    tolerance_deg: float = Field(gt=0.0, le=90.0)
    low: float = Field(default=0.0, ge=0.0)
    high: float = Field(default=1e9, gt=0.0)


class Box(_Region):
    kind: Literal["box"] = "box"
    fy: tuple[float, float]
    fx: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        for name, (lo, hi) in (("fy", self.fy), ("fx", self.fx)):
            if hi <= lo:
                raise ValueError(f"box needs {name}[0] < {name}[1], got [{lo}, {hi})")
        return self


Region = Annotated[Annulus | Notch | Wedge | Box, Field(discriminator="kind")]


class BandSpec(BaseModel):
    """A validated band specification (see module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    regions: list[Region] = Field(min_length=1, max_length=MAX_REGIONS)
    units: Units = "cycles/pixel"
    radius: RadiusConvention = "absolute"
    softness: float = Field(
        default=0.0, ge=0.0, description="raised-cosine roll-off width outside each region"
    )
    allow_ill_posed: bool = Field(
        default=False,
        description="accept masks covering DC or more than half the spectrum (warn instead)",
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> BandSpec:
        if self.units == "cycles/image" and self.radius == "normalized":
            raise ValueError("radius 'normalized' is only defined with units 'cycles/pixel'")
        limit = 0.5 if self.units == "cycles/pixel" else _MAX_CYCLES_PER_IMAGE
        radial_limit = 1.0 if self.radius == "normalized" else limit * 2**0.5
        for i, region in enumerate(self.regions):
            where = f"regions[{i}] ({region.kind})"
            if isinstance(region, Annulus | Wedge):
                if region.low >= radial_limit:
                    raise ValueError(f"{where}: low={region.low} is beyond the largest radius")
            elif isinstance(region, Notch):
                for name, v in (("fy", region.fy), ("fx", region.fx)):
                    if abs(v) > limit:
                        raise ValueError(
                            f"{where}: |{name}|={abs(v)} exceeds {limit} ({self.units})"
                        )
                if region.radius > limit:
                    raise ValueError(f"{where}: radius {region.radius} exceeds {limit}")
            elif isinstance(region, Box):
                for name, (lo, hi) in (("fy", region.fy), ("fx", region.fx)):
                    if lo < -limit or hi > limit:
                        raise ValueError(f"{where}: {name} range [{lo}, {hi}) leaves ±{limit}")
        if self.softness > limit / 2:
            raise ValueError(f"softness {self.softness} is too large (at most {limit / 2})")
        return self

    def cache_key(self) -> str:
        """Canonical JSON used to cache masks by (spec, shape)."""
        return self.model_dump_json()


class BandSpecError(ValueError):
    """A band specification that cannot be parsed or validated; the message says why."""


def parse_band_spec(data: str | bytes | dict[str, object] | BandSpec) -> BandSpec:
    """Parse a band spec from JSON text or a dict, raising :class:`BandSpecError` with a
    readable one-line-per-problem message instead of pydantic's exception."""
    if isinstance(data, BandSpec):
        return data
    try:
        loaded = json.loads(data) if isinstance(data, str | bytes) else data
        if not isinstance(loaded, dict):
            raise BandSpecError("a band spec must be a JSON object with a 'regions' list")
        return BandSpec.model_validate(loaded)
    except json.JSONDecodeError as exc:
        raise BandSpecError(
            f"band spec is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from exc
    except RecursionError as exc:
        raise BandSpecError("band spec is nested too deeply") from exc
    except ValidationError as exc:
        raise BandSpecError(format_validation_error(exc)) from exc


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "spec"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid band spec: " + "; ".join(parts)
