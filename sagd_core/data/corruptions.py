"""Synthetic corruptions that live in known frequency bands (DESIGN.md §4, §6).

Three kinds, each a frozen pydantic model that round-trips through JSON (discriminated by
``kind``):

- :class:`BandNoise` (``band_noise``): P1's corruption ``x' = x + γ ε_[a,b)`` (DESIGN.md §6), where
  ``ε_[a,b) = F⁻¹ M F ξ / sqrt(mean M²)`` is white Gaussian noise ``ξ`` filtered by the hard
  annulus mask ``M = 1[a ≤ r < b)`` with the orthonormal DFT. Dividing by ``sqrt(mean M²)`` (the
  mean over the full grid) gives unit pixel variance *in expectation* (analytic normalization,
  DESIGN.md §3), not per sample, so the noise stays Gaussian.
- :class:`OrientedStripes` (``oriented``): the same construction with a thin wedge mask: noise
  whose energy lies on the line through DC at ``angle_deg``, within ``tolerance_deg``, for
  ``low ≤ r < high``; in pixels it is a stripe pattern. ``amplitude`` is its pixel standard
  deviation.
- :class:`PeriodicStripes` (``periodic``): ``amplitude · Σ_k cos(2π(fy_k·y + fx_k·x) + φ_k)``
  with a uniformly random phase ``φ_k`` per image, channel and frequency. ``amplitude`` is the peak
  of each cosine (pixel variance ``K·amplitude²/2`` for ``K`` frequencies off the Nyquist lines).

Angle convention (the same as the ``wedge`` band region, :mod:`sagd_core.spectral.bands`):
frequencies are ``fy = fftfreq(H)`` along rows (``y`` = row index, increasing *downwards* in the
displayed image) and ``fx = fftfreq(W)`` along columns; ``angle_deg`` is the direction of the
spectral line, measured from the ``+fx`` axis towards ``+fy``, i.e. ``atan2(fy, fx)``, modulo 180°.
The pattern then varies along the pixel direction ``(x, y) = (cos θ, sin θ)`` and its stripes run
perpendicular to it: ``angle_deg = 0`` gives vertical stripes (constant down each column),
``angle_deg = 90`` horizontal ones.

Every corruption is applied to each channel independently (DESIGN.md §1) and is deterministic given
``seed``: image ``i`` uses the generator ``default_rng([seed, i])``, so its corruption does not
depend on the batch it is processed in. Nothing is clipped (P1 does not clip);
:func:`corruption_band_spec` gives the band specification that describes where the corruption lives,
to train or restore with.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.masks import band_mask

RadiusConvention = Literal["absolute", "normalized"]

MAX_FREQUENCIES = 16
_MAX_LEVEL = 1e3  # amplitudes far beyond the [-1, 1] image range are a mistake
_CHUNK = 64  # images per FFT batch


class CorruptionError(ValueError):
    """A corruption that cannot be parsed, validated or applied; the message says why."""


class _Corruption(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def band_spec(self) -> BandSpec:
        """The :class:`BandSpec` of the frequencies this corruption occupies."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _valid_band_spec(self) -> Any:
        # The band spec must be valid too; building it here reports bad ranges at parse time.
        try:
            self.band_spec()
        except ValidationError as exc:
            raise ValueError(_messages(exc)) from None
        return self


class BandNoise(_Corruption):
    """``x' = x + gamma · ε_[low, high)``: unit-variance Gaussian noise in an annulus."""

    kind: Literal["band_noise"] = "band_noise"
    low: float = Field(ge=0.0, description="inner radius (inclusive)")
    high: float = Field(gt=0.0, description="outer radius (exclusive)")
    gamma: float = Field(default=1.0, ge=0.0, le=_MAX_LEVEL, description="noise pixel std")
    radius: RadiusConvention = "absolute"

    def band_spec(self) -> BandSpec:
        region = {"kind": "annulus", "low": self.low, "high": self.high}
        return BandSpec.model_validate({"regions": [region], "radius": self.radius})


class PeriodicStripes(_Corruption):
    """A sum of cosines at fixed frequencies (cycles/pixel) with random phases."""

    kind: Literal["periodic"] = "periodic"
    frequencies: tuple[tuple[float, float], ...] = Field(
        min_length=1, max_length=MAX_FREQUENCIES, description="(fy, fx) pairs in cycles/pixel"
    )
    amplitude: float = Field(ge=0.0, le=_MAX_LEVEL, description="peak of each cosine")
    notch_radius: float = Field(
        default=0.02, gt=0.0, le=0.25, description="radius of the notches in the band spec"
    )

    @field_validator("frequencies")
    @classmethod
    def _not_dc_and_in_range(
        cls, value: tuple[tuple[float, float], ...]
    ) -> tuple[tuple[float, float], ...]:
        for k, (fy, fx) in enumerate(value):
            if abs(fy) > 0.5 or abs(fx) > 0.5:
                raise ValueError(f"frequencies[{k}] = ({fy}, {fx}) leaves [-0.5, 0.5]")
            if fy == 0 and fx == 0:
                raise ValueError(f"frequencies[{k}] is DC (0, 0), not a stripe")
        return value

    def band_spec(self) -> BandSpec:
        notches = [
            {"kind": "notch", "fy": fy, "fx": fx, "radius": self.notch_radius}
            for fy, fx in self.frequencies
        ]
        return BandSpec.model_validate({"regions": notches})


class OrientedStripes(_Corruption):
    """Gaussian stripe noise on the spectral line at ``angle_deg`` (see the module docstring)."""

    kind: Literal["oriented"] = "oriented"
    angle_deg: float = Field(ge=-360.0, le=360.0, description="spectral line, from +fx to +fy")
    low: float = Field(ge=0.0, description="inner radius (inclusive)")
    high: float = Field(gt=0.0, description="outer radius (exclusive)")
    amplitude: float = Field(ge=0.0, le=_MAX_LEVEL, description="noise pixel std")
    tolerance_deg: float = Field(default=3.0, gt=0.0, le=45.0, description="half-width of the line")
    radius: RadiusConvention = "absolute"

    def band_spec(self) -> BandSpec:
        region = {
            "kind": "wedge",
            "angle_deg": self.angle_deg,
            "tolerance_deg": self.tolerance_deg,
            "low": self.low,
            "high": self.high,
        }
        return BandSpec.model_validate({"regions": [region], "radius": self.radius})


Corruption = Annotated[BandNoise | PeriodicStripes | OrientedStripes, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[BandNoise | PeriodicStripes | OrientedStripes] = TypeAdapter(Corruption)


def parse_corruption(data: str | bytes | dict[str, Any] | BaseModel) -> Corruption:
    """Parse a corruption from JSON text, a dict or a model; :class:`CorruptionError` if invalid."""
    if isinstance(data, BandNoise | PeriodicStripes | OrientedStripes):
        return data
    try:
        loaded = json.loads(data) if isinstance(data, str | bytes) else data
        if isinstance(loaded, BaseModel):
            loaded = loaded.model_dump()
        if not isinstance(loaded, dict):
            raise CorruptionError("a corruption must be a JSON object with a 'kind'")
        return _ADAPTER.validate_python(loaded)
    except json.JSONDecodeError as exc:
        raise CorruptionError(f"corruption is not valid JSON: {exc.msg} at {exc.pos}") from exc
    except RecursionError as exc:
        raise CorruptionError("corruption is nested too deeply") from exc
    except ValidationError as exc:
        raise CorruptionError("invalid corruption: " + _messages(exc)) from exc


def _messages(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def corruption_spec(corruption: Corruption) -> BandSpec:
    """The :class:`BandSpec` of the frequencies a corruption occupies."""
    return corruption.band_spec()


def corruption_band_spec(corruption: Corruption) -> dict[str, Any]:
    """The band specification (JSON-ready dict of the ``BandSpec`` schema) where the corruption
    lives: an annulus for band noise, a wedge for oriented stripes, notches for periodic ones."""
    return corruption_spec(corruption).model_dump(mode="json")


def sample_corruption(
    shape: tuple[int, int, int, int], corruption: Corruption, *, seed: int
) -> np.ndarray:
    """The additive corruption ``c`` for images of ``shape = (N, C, H, W)``.

    Float64, so its spectrum is exact to rounding (float32 would leak ~1e-14 of the energy
    outside the band)."""
    if len(shape) != 4 or any(int(s) < 1 for s in shape):
        raise CorruptionError(f"expected a shape (N, C, H, W) of positive sizes, got {shape}")
    if seed < 0:
        raise CorruptionError(f"seed must be non-negative, got {seed}")
    n, c, h, w = (int(s) for s in shape)
    out = np.empty((n, c, h, w), dtype=np.float64)
    if isinstance(corruption, PeriodicStripes):
        for i in range(n):
            out[i] = _periodic(corruption, c, h, w, np.random.default_rng([seed, i]))
        return out
    mask, scale = _unit_mask(corruption, h, w)
    level = corruption.gamma if isinstance(corruption, BandNoise) else corruption.amplitude
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        xi = np.stack(
            [
                np.random.default_rng([seed, i]).standard_normal((c, h, w))
                for i in range(start, stop)
            ]
        )
        spectrum = np.fft.rfft2(xi, norm="ortho") * mask
        out[start:stop] = np.fft.irfft2(spectrum, s=(h, w), norm="ortho") * (scale * level)
    return out


def apply_corruption(images: np.ndarray, corruption: Corruption, *, seed: int) -> np.ndarray:
    """``images + c`` for float ``(N, C, H, W)`` images in ``[-1, 1]``; float32, not clipped."""
    arr = np.asarray(images)
    if arr.ndim != 4 or not np.issubdtype(arr.dtype, np.floating):
        raise CorruptionError(f"expected float images (N, C, H, W), got {arr.dtype} {arr.shape}")
    if not np.isfinite(arr).all():
        raise CorruptionError("images hold non-finite values")
    noise = sample_corruption(arr.shape, corruption, seed=seed)
    return (arr + noise).astype(np.float32)


def _unit_mask(corruption: BandNoise | OrientedStripes, h: int, w: int) -> tuple[np.ndarray, float]:
    """Half-grid mask and ``1 / sqrt(mean M²)`` over the full grid (unit pixel variance)."""
    spec = corruption_spec(corruption)
    power = float(np.mean(band_mask(spec, h, w, half=False) ** 2))
    if power == 0.0:
        raise CorruptionError(
            f"the {corruption.kind} band holds no frequency bin at {h}×{w}; widen it or check "
            f"the radius convention ({corruption.radius})"
        )
    return band_mask(spec, h, w), 1.0 / math.sqrt(power)


def _periodic(
    corruption: PeriodicStripes, c: int, h: int, w: int, rng: np.random.Generator
) -> np.ndarray:
    freqs = np.asarray(corruption.frequencies, dtype=np.float64)  # (K, 2)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(c, len(freqs)))
    y = np.arange(h, dtype=np.float64)[:, None]
    x = np.arange(w, dtype=np.float64)[None, :]
    out = np.zeros((c, h, w))
    for k, (fy, fx) in enumerate(freqs):
        arg = 2.0 * np.pi * (fy * y + fx * x)
        out += np.cos(arg[None] + phases[:, k, None, None])
    return out * corruption.amplitude


__all__ = [
    "BandNoise",
    "Corruption",
    "CorruptionError",
    "OrientedStripes",
    "PeriodicStripes",
    "apply_corruption",
    "corruption_band_spec",
    "corruption_spec",
    "parse_corruption",
    "sample_corruption",
]
