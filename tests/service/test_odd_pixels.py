"""One rule for odd pixel values at submit (issue: ±inf got a 202 and NaN a 422; integer and float
images out of range became constant and failed after 202): non-finite values are refused,
in-range values read as fractions of full scale, any other range mapped onto [0, 1]."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.jobs.images import ImageRejected, decode_image

RNG = np.random.default_rng(0)
BASE = RNG.random((16, 16))


def tiff(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".tiff", arr)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_pixels_are_refused_alike(bad: float) -> None:
    arr = np.where(BASE < 0.1, bad, BASE).astype(np.float32)
    with pytest.raises(ImageRejected, match="non-finite") as info:
        decode_image(tiff(arr), max_pixels=10**6)
    assert info.value.code == "invalid_image"


@pytest.mark.parametrize(
    ("arr", "expected"),
    [
        (BASE.astype(np.float32), BASE),  # floats in [0, 1]: as they are
        ((BASE - 10.0).astype(np.float32), (BASE - BASE.min()) / np.ptp(BASE)),  # [-10, -9]
        ((BASE * 4.0 + 1.0).astype(np.float32), (BASE - BASE.min()) / np.ptp(BASE)),  # [1, 5]
        ((BASE * 60000).astype(np.int32), np.floor(BASE * 60000) / 65535.0),  # 16-bit range
        (  # integers far beyond 16 bits: their own range
            (BASE * 2**31).astype(np.int32),
            (np.floor(BASE * 2**31) - np.floor(BASE * 2**31).min())
            / np.ptp(np.floor(BASE * 2**31)),
        ),
    ],
    ids=["float-unit", "float-negative", "float-above-one", "int32-16bit", "int32-wide"],
)
def test_wide_pixels_follow_one_rule(arr: np.ndarray, expected: np.ndarray) -> None:
    decoded = decode_image(tiff(arr), max_pixels=10**6)
    pixels = decoded.pixels[..., 0]
    assert decoded.bit_depth == 16
    np.testing.assert_allclose(pixels, expected, atol=2e-6)
    assert np.ptp(pixels) > 0.5  # never constant by clipping
