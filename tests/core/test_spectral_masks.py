"""Band specs and masks: validation, symmetry, exact bins, units, caching (DESIGN.md §1–2)."""

from __future__ import annotations

import numpy as np
import pytest

from sagd_core.spectral import (
    BandSpec,
    BandSpecError,
    IllPosedBandError,
    band_mask,
    check_spec_for_shape,
    parse_band_spec,
    radius_grid,
)


def spec(*regions: dict, **kw: object) -> BandSpec:
    return parse_band_spec({"regions": list(regions), **kw})


def is_symmetric(full: np.ndarray) -> bool:
    conj = np.roll(np.flip(full, axis=(0, 1)), shift=(1, 1), axis=(0, 1))
    return bool(np.array_equal(full, conj))


ALL_KINDS = [
    {"kind": "annulus", "low": 0.1, "high": 0.2},
    {"kind": "notch", "fy": 0.25, "fx": 0.125, "radius": 0.04},
    {"kind": "wedge", "angle_deg": 30, "tolerance_deg": 5, "low": 0.05, "high": 0.5},
    {"kind": "box", "fy": [0.1, 0.3], "fx": [-0.2, -0.05]},
]


@pytest.mark.parametrize("region", ALL_KINDS, ids=lambda r: r["kind"])
@pytest.mark.parametrize("softness", [0.0, 0.03])
@pytest.mark.parametrize("shape", [(32, 32), (31, 24), (17, 40)])
def test_masks_symmetric_in_unit_interval(region: dict, softness: float, shape: tuple) -> None:
    s = spec(region, softness=softness)
    full = band_mask(s, *shape, half=False)
    half = band_mask(s, *shape)
    assert full.shape == shape and half.shape == (shape[0], shape[1] // 2 + 1)
    assert full.min() >= 0.0 and full.max() <= 1.0 and full.max() == 1.0
    assert is_symmetric(full)
    np.testing.assert_array_equal(half, full[:, : shape[1] // 2 + 1])
    if softness > 0:  # the roll-off only adds coverage outside the hard region
        hard = band_mask(spec(region), *shape, half=False)
        assert np.all(full >= hard)
        assert np.any((full > 0) & (full < 1))
    else:
        assert set(np.unique(full)) <= {0.0, 1.0}


def test_annulus_hard_edges_select_exact_half_open_bins() -> None:
    s = spec({"kind": "annulus", "low": 0.125, "high": 0.25})
    r = radius_grid(32, 32, half=True)
    expected = ((r >= 0.125) & (r < 0.25)).astype(float)
    np.testing.assert_array_equal(band_mask(s, 32, 32), expected)
    # Bins exactly on the outer edge (r = 0.25, e.g. fy=0, fx=8/32) are outside: half-open.
    assert band_mask(s, 32, 32)[0, 8] == 0.0 and band_mask(s, 32, 32)[0, 4] == 1.0


def test_adjacent_bands_share_no_bin() -> None:
    a = band_mask(spec({"kind": "annulus", "low": 0.1, "high": 0.2}), 32, 32)
    b = band_mask(spec({"kind": "annulus", "low": 0.2, "high": 0.3}), 32, 32)
    assert not np.any((a > 0) & (b > 0))


def test_notch_adds_conjugate_peak() -> None:
    s = spec({"kind": "notch", "fy": 4 / 32, "fx": 6 / 32, "radius": 0.01})
    full = band_mask(s, 32, 32, half=False)
    assert full[4, 6] == 1.0 and full[-4, -6] == 1.0
    assert full.sum() == 2.0


def test_wedge_follows_angle() -> None:
    s = spec({"kind": "wedge", "angle_deg": 90, "tolerance_deg": 2, "low": 0.01, "high": 0.6})
    full = band_mask(s, 32, 32, half=False)
    # angle 90° = the fy axis: column fx = 0 except DC
    assert full[1:, 0].all() and full[0, 0] == 0.0
    assert full[:, 1:].sum() == 0


def test_normalized_radius_matches_p1_bands() -> None:
    absolute = spec({"kind": "annulus", "low": 0.8, "high": 0.9}, radius="normalized")
    assert band_mask(absolute, 32, 32).sum() > 0  # corner bins: non-empty when normalized
    with pytest.raises(BandSpecError, match="beyond the largest radius"):
        spec({"kind": "annulus", "low": 0.8, "high": 0.9})


def test_cycles_per_image_converts_per_axis() -> None:
    per_image = spec({"kind": "annulus", "low": 4, "high": 8}, units="cycles/image")
    per_pixel = spec({"kind": "annulus", "low": 4 / 64, "high": 8 / 64})
    np.testing.assert_array_equal(band_mask(per_image, 64, 64), band_mask(per_pixel, 64, 64))


def test_masks_are_cached_and_read_only() -> None:
    s = spec({"kind": "annulus", "low": 0.1, "high": 0.3})
    same = spec({"kind": "annulus", "low": 0.1, "high": 0.3})
    m1, m2 = band_mask(s, 48, 48), band_mask(same, 48, 48)
    assert m1.base is m2.base or m1 is m2
    with pytest.raises(ValueError):
        m1[0, 0] = 1.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ({"regions": []}, "regions"),
        ({"regions": [{"kind": "annulus", "low": 0.3, "high": 0.1}]}, "low < high"),
        ({"regions": [{"kind": "annulus", "low": "nan", "high": 0.1}]}, "regions.0"),
        ({"regions": [{"kind": "annulus", "low": 0.1, "high": float("inf")}]}, "regions.0"),
        ({"regions": [{"kind": "ring", "low": 0.1, "high": 0.2}]}, "kind"),
        ({"regions": [{"kind": "notch", "fy": 0.7, "fx": 0, "radius": 0.1}]}, "exceeds"),
        ({"regions": [{"kind": "notch", "fy": 0.1, "fx": 0, "radius": -1}]}, "radius"),
        ({"regions": [{"kind": "box", "fy": [0.2, 0.1], "fx": [0, 0.1]}]}, "box needs"),
        ({"regions": [{"kind": "annulus", "low": 0, "high": 0.1}], "extra": 1}, "extra"),
        ({"regions": [{"kind": "annulus", "low": 0.1, "high": 0.2}] * 65}, "at most 64"),
        (
            {
                "regions": [{"kind": "annulus", "low": 1, "high": 2}],
                "units": "cycles/image",
                "radius": "normalized",
            },
            "normalized",
        ),
    ],
)
def test_bad_specs_rejected_with_message(data: object, message: str) -> None:
    with pytest.raises(BandSpecError, match=message):
        parse_band_spec(data)  # type: ignore[arg-type]


def test_ill_posed_specs_refused_unless_allowed() -> None:
    dc = spec({"kind": "annulus", "low": 0.0, "high": 0.1})
    with pytest.raises(IllPosedBandError, match="covers DC"):
        check_spec_for_shape(dc, 32, 32)
    wide = spec({"kind": "annulus", "low": 0.05, "high": 0.7})
    with pytest.raises(IllPosedBandError, match="more than half"):
        check_spec_for_shape(wide, 32, 32)
    allowed = spec({"kind": "annulus", "low": 0.05, "high": 0.7}, allow_ill_posed=True)
    assert check_spec_for_shape(allowed, 32, 32).fraction > 0.5
    empty = spec({"kind": "annulus", "low": 0.01, "high": 0.02})  # between bins on 32×32
    with pytest.raises(IllPosedBandError, match="holds no frequency bin"):
        check_spec_for_shape(empty, 32, 32)
    assert check_spec_for_shape(empty, 256, 256).fraction > 0


def test_spec_json_round_trip() -> None:
    s = spec(*ALL_KINDS, softness=0.01)
    assert parse_band_spec(s.model_dump_json()) == s
