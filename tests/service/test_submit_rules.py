"""One rule for odd inputs, applied at submit (issue #20 item 5), as a table: every enumerated
parameter validated, messages in the product's words (no interpreter internals), malformed paths
answered with JSON and never a redirect, a model the registry does not know refused at submit,
and odd pixel values refused (NaN, ±inf) or accepted by the documented rule.

Also: the API's bounded band check (``service.api.band_coverage.coverage``, a strip of the
frequency grid at a time) says exactly what the library's ``mask_report`` says within its budget,
and beyond it stays close at a bounded cost."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from sagd_core.spectral.bands import parse_band_spec
from sagd_core.spectral.masks import mask_report
from service.api import band_coverage
from service.api.band_coverage import coverage
from tests.harness import png_bytes, restore_form

HUGE = "1" * 5000  # more digits than Python reads as an integer by default


def annulus(low: str, high: str = "0.4", extra: str = "") -> str:
    """A band spec's JSON with ``low`` and ``high`` written as given (any text)."""
    return '{"regions":[{"kind":"annulus","low":' + low + ',"high":' + high + "}]" + extra + "}"


INTERNALS = ("sys.", "set_int_max_str_digits", "Traceback", "Exception", "/work/", ".py")


def _tiff(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".tiff", arr)
    assert ok
    return buf.tobytes()


_BASE = np.random.default_rng(0).random((16, 16))


def _with(value: float) -> bytes:
    return _tiff(np.where(_BASE < 0.1, value, _BASE).astype(np.float32))


UPLOADS: list[tuple[str, dict[str, Any], bytes | None, int, str | None]] = [
    # (case, form overrides, image (None: an 8-bit PNG), status, error code)
    ("bit depth 0", {"output_bit_depth": 0}, None, 422, "validation_error"),
    ("bit depth 7", {"output_bit_depth": 7}, None, 422, "validation_error"),
    ("bit depth 32", {"output_bit_depth": 32}, None, 422, "validation_error"),
    ("bit depth -8", {"output_bit_depth": -8}, None, 422, "validation_error"),
    ("bit depth 8.0", {"output_bit_depth": "8.0"}, None, 422, "validation_error"),
    ("bit depth 00", {"output_bit_depth": "00"}, None, 422, "validation_error"),
    ("bit depth 8", {"output_bit_depth": 8}, None, 202, None),
    ("bit depth 16", {"output_bit_depth": 16}, None, 202, None),
    ("method bogus", {"method": "bogus"}, None, 422, "validation_error"),
    ("schedule bogus", {"schedule": "bogus"}, None, 422, "validation_error"),
    (
        "5000-digit low",
        {"band_spec": annulus(HUGE, high="0.45")},
        None,
        422,
        "invalid_band_spec",
    ),
    (
        "5000-digit extra field",
        {"band_spec": annulus("0.1", extra=',"x":' + HUGE)},
        None,
        422,
        "invalid_band_spec",
    ),
    ("5000-digit steps", {"steps": HUGE}, None, 422, "validation_error"),
    ("model ,,, sagd", {"model": ",,,", "method": "sagd"}, None, 422, "validation_error"),
    ("model ,,, ddnm", {"model": ",,,", "method": "ddnm"}, None, 422, "validation_error"),
    ("model blank part", {"model": "a, ,b", "method": "sagd"}, None, 422, "validation_error"),
    ("model unknown sagd", {"model": "no-such", "method": "sagd"}, None, 422, "unknown_model"),
    ("model unknown ddnm", {"model": "no-such:3", "method": "ddnm"}, None, 422, "unknown_model"),
    ("model bad version", {"model": "a:x", "method": "sagd"}, None, 422, "validation_error"),
    ("float NaN", {}, _with(np.nan), 422, "invalid_image"),
    ("float +inf", {}, _with(np.inf), 422, "invalid_image"),
    ("float -inf", {}, _with(-np.inf), 422, "invalid_image"),
    ("float [-10, -9]", {}, _tiff((_BASE - 10).astype(np.float32)), 202, None),
    ("int32 [0, 2^31)", {}, _tiff((_BASE * 2**31).astype(np.int32)), 202, None),
]


@pytest.mark.parametrize(
    ("form", "image", "status", "code"),
    [case[1:] for case in UPLOADS],
    ids=[case[0] for case in UPLOADS],
)
def test_restoration_inputs_follow_one_rule(
    client: TestClient, form: dict[str, Any], image: bytes | None, status: int, code: str | None
) -> None:
    response = client.post(
        "/v1/restorations",
        files={"image": ("x", image if image is not None else png_bytes())},
        data=restore_form(**form),
    )
    assert response.status_code == status, response.text
    if code is not None:
        body = response.json()
        assert body["code"] == code
        assert not any(word in body["message"] for word in INTERNALS), body["message"]


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"output_bit_depth": 0}, 422, "validation_error"),
        ({"output_bit_depth": 16}, 202, None),
        ({"model": ",,,", "method": "sagd"}, 422, "validation_error"),
    ],
)
def test_batches_follow_the_same_rule(
    client: TestClient, form: dict[str, Any], status: int, code: str | None
) -> None:
    response = client.post(
        "/v1/batches", files=[("images", ("x.png", png_bytes()))], data=restore_form(**form)
    )
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code


def test_a_constant_image_is_refused_at_submit(client: TestClient) -> None:
    """The restoration would fail on it ("the image is constant"): refused before the 202, in a
    batch too (the item named)."""
    flat = _tiff(np.full((16, 16), 7.5, np.float32))
    response = client.post("/v1/restorations", files={"image": ("x", flat)}, data=restore_form())
    assert response.status_code == 422 and response.json()["code"] == "constant_image"
    files = [("images", ("a.png", png_bytes())), ("images", ("flat.tiff", flat))]
    response = client.post("/v1/batches", files=files, data=restore_form())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "constant_image"
    assert "item 1 (flat)" in response.json()["message"]


@pytest.mark.parametrize("fmt", [".tiff", ".png"])
@pytest.mark.parametrize("bump", [0, 1, 256])
def test_16_bit_colour_constancy_is_decided_on_both_bytes(
    client: TestClient, fmt: str, bump: int
) -> None:
    """A 16-bit colour file whose 8-bit rendering is constant: refused only when every sample
    has one value (one sample off in its low byte, ``bump=1``, or high byte, ``256``: accepted)."""
    arr = np.full((16, 16, 3), 1000, np.uint16)
    arr[5, 5, 1] += bump
    ok, buf = cv2.imencode(fmt, arr)
    assert ok
    response = client.post(
        "/v1/restorations", files={"image": ("x", buf.tobytes())}, data=restore_form()
    )
    if bump == 0:
        assert response.status_code == 422 and response.json()["code"] == "constant_image"
    else:
        assert response.status_code == 202, response.text


PATHS = [
    "/v1/corruption-types/..%2f",
    "/v1/corruption-types/%2e%2e/",
    "/v1/corruption-types/",
    "/v1/jobs/",
    "/v1/batches/..%2f..%2f",
    "/v1/models/x/",
]


@pytest.mark.parametrize("path", PATHS)
def test_malformed_paths_answer_json_never_a_redirect(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 404, (response.status_code, response.headers)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == "not_found"
    assert "location" not in response.headers


def test_a_huge_number_in_a_corruption_type_is_refused_in_our_words(client: TestClient) -> None:
    band = annulus(HUGE)
    response = client.post(
        "/v1/corruption-types",
        content='{"name": "huge", "band": ' + band + "}",
        headers={"content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert not any(word in response.json()["message"] for word in INTERNALS)


SPECS = [
    {"regions": [{"kind": "annulus", "low": 0.1, "high": 0.45}]},
    {"regions": [{"kind": "annulus", "low": 0.1, "high": 0.3}], "softness": 0.05},
    {"regions": [{"kind": "notch", "fy": 0.1, "fx": 0.2, "radius": 0.03}], "softness": 0.02},
    {"regions": [{"kind": "notch", "fy": 0.1, "fx": 0.2, "radius": 0.0001}]},  # holds no bin
    {
        "regions": [
            {"kind": "wedge", "angle_deg": 30, "tolerance_deg": 10, "low": 0.05, "high": 0.4}
        ]
    },
    {"regions": [{"kind": "box", "fy": [0.1, 0.2], "fx": [-0.3, 0.1]}], "softness": 0.01},
    {"regions": [{"kind": "annulus", "low": 0.0, "high": 0.6}]},  # DC and most of the grid
    {"regions": [{"kind": "annulus", "low": 2, "high": 9}], "units": "cycles/image"},
]


@pytest.mark.parametrize("spec", SPECS, ids=[json.dumps(s)[:60] for s in SPECS])
def test_the_bounded_band_check_says_what_the_library_says(spec: dict[str, Any]) -> None:
    band = parse_band_spec(json.dumps(spec))
    for height, width in [(8, 8), (9, 13), (64, 31), (130, 200)]:  # even, odd, > one strip
        found, theirs = coverage(band, height, width), mask_report(band, height, width)
        assert found.exact
        ours = found.report
        assert ours.covers_dc == theirs.covers_dc
        assert ours.empty_regions == theirs.empty_regions
        assert ours.fraction == pytest.approx(theirs.fraction, abs=1e-12)
        assert ours.problems == theirs.problems


def test_a_costly_band_check_samples_the_grid_and_still_finds_every_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond the budget the fraction is measured on a sampled grid (close to the library's),
    DC is exact, and a region too small for the sampled grid is still found (or not) at full
    resolution: notches and boxes in their bounding boxes, annuli by a scan."""
    monkeypatch.setattr(band_coverage, "EXACT_BUDGET", 20_000)
    band_coverage._coverage.cache_clear()
    spec = parse_band_spec(
        json.dumps(
            {
                "regions": [
                    {"kind": "annulus", "low": 0.1, "high": 0.3},
                    {"kind": "notch", "fy": 0.21, "fx": 0.33, "radius": 0.004},  # one or two bins
                    {"kind": "notch", "fy": 0.1, "fx": 0.2, "radius": 0.0001},  # none
                    {"kind": "box", "fy": [0.4, 0.404], "fx": [0.02, 0.024]},
                    {"kind": "annulus", "low": 0.4501, "high": 0.4502},
                    {
                        "kind": "wedge",
                        "angle_deg": 60,
                        "tolerance_deg": 5,
                        "low": 0.05,
                        "high": 0.2,
                    },
                ]
            }
        )
    )
    for height, width in [(256, 256), (255, 300)]:
        found, theirs = coverage(spec, height, width), mask_report(spec, height, width)
        assert found.stride > 1
        assert found.report.covers_dc == theirs.covers_dc
        assert found.report.empty_regions == theirs.empty_regions
        assert 2 in theirs.empty_regions and 1 not in theirs.empty_regions
        assert found.report.fraction == pytest.approx(theirs.fraction, abs=0.01)
    band_coverage._coverage.cache_clear()


def test_the_band_check_spends_a_bounded_number_of_evaluations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """64 wide wedges on a 4096² image: a few kilobytes of request were two billion mask
    evaluations on the API's event loop; now at most twice the budget."""
    counted = [0]
    real = band_coverage._region_mask

    def counting(region: Any, fy: Any, fx: Any, rscale: float, soft: float) -> Any:
        out = real(region, fy, fx, rscale, soft)
        counted[0] += out.size
        return out

    monkeypatch.setattr(band_coverage, "_region_mask", counting)
    band_coverage._coverage.cache_clear()
    wedges = [
        {"kind": "wedge", "angle_deg": 2.8 * i, "tolerance_deg": 0.5, "low": 0.05, "high": 0.5}
        for i in range(64)
    ]
    spec = parse_band_spec(json.dumps({"regions": wedges}))
    found = coverage(spec, 4096, 4096)
    assert found.stride > 1 and not found.report.empty_regions
    assert counted[0] <= 2 * band_coverage.EXACT_BUDGET
    assert 0.2 < found.report.fraction < 0.35  # 64 wedges of 1° through 45 % of the radius
    band_coverage._coverage.cache_clear()


def test_an_estimated_fraction_near_one_half_is_left_to_the_worker() -> None:
    report = mask_report(parse_band_spec(json.dumps(SPECS[0])), 8, 8)
    near = dataclasses.replace(report, fraction=0.51)
    assert not band_coverage.fraction_is_decided(band_coverage.Coverage(near, stride=3))
    assert band_coverage.fraction_is_decided(band_coverage.Coverage(near, stride=1))
    far = dataclasses.replace(report, fraction=0.6)
    assert band_coverage.fraction_is_decided(band_coverage.Coverage(far, stride=3))
