"""Band specs fuzzed with hypothesis against the API: every failure is a 422 with a message.

Four generators: plausible specs (right kinds and keys, values around the valid range, so many
are accepted and some are ill-posed at the image's size), near-valid specs (right shape, hostile
values: NaN, ±inf, huge, negative, unknown kinds and keys), arbitrary JSON values and text.
They go to ``POST /v1/restorations`` (form field ``band_spec``) and, as the ``band`` of a JSON
body, to ``POST /v1/corruption-types``. An accepted spec must also be one the library accepts
and finds well-posed at the image's size: the API may not let through what the worker refuses.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagd_core.spectral.bands import parse_band_spec
from sagd_core.spectral.masks import check_spec_for_shape
from tests.harness import Api, png_bytes
from tests.reliability.tools import is_problem_json

HEIGHT, WIDTH = 24, 32
IMAGE = png_bytes(WIDTH, HEIGHT)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1.0, max_value=1.0),
    st.sampled_from([0, 0.5, -0.5, 1e-300, 1e300, 65536, 2**63, -(2**63)]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=5),
    st.none(),
)
pairs = st.one_of(st.tuples(numbers, numbers).map(list), numbers, st.lists(numbers, max_size=4))
KINDS = st.one_of(st.sampled_from(["annulus", "notch", "wedge", "box"]), st.text(max_size=8))
FIELDS = ("low", "high", "fy", "fx", "radius", "angle_deg", "tolerance_deg")


@st.composite
def regions(draw: st.DrawFn) -> dict[str, Any]:
    region: dict[str, Any] = {"kind": draw(KINDS)}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=5)):
        region[name] = draw(pairs if name in ("fy", "fx") else numbers)
    if draw(st.booleans()):
        region[draw(st.text(max_size=6))] = draw(numbers)
    return region


@st.composite
def near_valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"regions": draw(st.lists(regions(), max_size=6))}
    if draw(st.booleans()):
        spec["units"] = draw(st.sampled_from(["cycles/pixel", "cycles/image", "px", ""]))
    if draw(st.booleans()):
        spec["radius"] = draw(st.sampled_from(["absolute", "normalized", "relative"]))
    if draw(st.booleans()):
        spec["softness"] = draw(numbers)
    if draw(st.booleans()):
        spec["allow_ill_posed"] = draw(st.one_of(st.booleans(), numbers))
    return spec


unit = st.floats(min_value=0.0, max_value=0.75)
span = st.lists(unit, min_size=2, max_size=2).map(sorted)


@st.composite
def plausible_regions(draw: st.DrawFn) -> dict[str, Any]:
    """Regions of the right kind and keys, values around the valid range (cycles/pixel): most
    are valid, some out of range, some empty or ill-posed at a 24×32 image."""
    kind = draw(st.sampled_from(["annulus", "notch", "wedge", "box"]))
    low, high = draw(span)
    if kind == "annulus":
        return {"kind": kind, "low": low, "high": high}
    if kind == "notch":
        signs = draw(st.tuples(st.sampled_from([-1, 1]), st.sampled_from([-1, 1])))
        radius = draw(st.floats(min_value=0.0, max_value=0.2))
        return {"kind": kind, "fy": signs[0] * low, "fx": signs[1] * high, "radius": radius}
    if kind == "wedge":
        return {
            "kind": kind,
            "angle_deg": draw(st.floats(min_value=-360, max_value=360)),
            "tolerance_deg": draw(st.floats(min_value=0, max_value=90)),
            "low": low,
            "high": high,
        }
    fx = draw(span)
    return {"kind": kind, "fy": [low - 0.5, high - 0.5], "fx": fx}


@st.composite
def plausible_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"regions": draw(st.lists(plausible_regions(), min_size=1, max_size=4))}
    if draw(st.booleans()):
        spec["softness"] = draw(st.floats(min_value=0, max_value=0.3))
    if draw(st.booleans()):
        spec["radius"] = draw(st.sampled_from(["absolute", "normalized"]))
    if draw(st.booleans()):
        spec["allow_ill_posed"] = draw(st.booleans())
    return spec


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
any_spec_text = st.one_of(
    near_valid_specs().map(lambda s: json.dumps(s, allow_nan=True)),
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    st.text(max_size=200),
    st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n),
)


# Half plausible specs (many accepted, so the accepting branch is exercised), half hostile ones.
spec_texts = st.booleans().flatmap(
    lambda plausible: plausible_specs().map(json.dumps) if plausible else any_spec_text
)


def check_refusal(response: Any) -> None:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    assert is_problem_json(response), response.text[:300]


@pytest.mark.filterwarnings("ignore:ill-posed band spec accepted")
@FUZZ
@given(text=spec_texts)
def test_restorations_refuse_bad_specs_with_422(api: Api, text: str) -> None:
    response = api.client.post(
        "/v1/restorations",
        files={"image": ("x.png", IMAGE, "image/png")},
        data={"band_spec": text, "method": "notch"},
    )
    if response.status_code == 202:
        spec = parse_band_spec(text)  # what the API accepted, the library accepts too
        check_spec_for_shape(spec, HEIGHT, WIDTH)
    else:
        check_refusal(response)


@pytest.mark.filterwarnings("ignore:ill-posed band spec accepted")
@FUZZ
@given(band=st.one_of(plausible_specs(), near_valid_specs(), json_values))
def test_corruption_types_refuse_bad_specs_with_422(api: Api, band: Any) -> None:
    name = f"fuzz-{uuid.uuid4().hex[:12]}"
    response = api.client.post(
        "/v1/corruption-types",
        content=json.dumps({"name": name, "band": band}, allow_nan=True),
        headers={"content-type": "application/json"},
    )
    if response.status_code == 201:
        assert isinstance(band, dict)
        parse_band_spec(band)
        assert api.client.get(f"/v1/corruption-types/{name}").json()["band"]
    else:
        check_refusal(response)


def test_a_valid_spec_is_accepted_by_both_routes(api: Api) -> None:
    """The generators reach the accepting branch too (the tests above are not vacuous)."""
    spec = {"regions": [{"kind": "notch", "fy": 0.25, "fx": 0.125, "radius": 0.06}]}
    response = api.client.post(
        "/v1/restorations",
        files={"image": ("x.png", IMAGE, "image/png")},
        data={"band_spec": json.dumps(spec), "method": "notch"},
    )
    assert response.status_code == 202, response.text
    created = api.client.post(
        "/v1/corruption-types", json={"name": f"ok-{uuid.uuid4().hex[:8]}", "band": spec}
    )
    assert created.status_code == 201, created.text
