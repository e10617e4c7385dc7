"""Valid inputs through the real API: pixel modes × EXIF orientations 1–8 × PNG/JPEG/TIFF/WebP.

Every upload must be accepted (202) and the normalized input the API stores for the worker
(``jobs/<id>/input.png``, at the input's bit depth) must hold the test pattern as a viewer
shows it: orientation applied, gray kept gray, alpha dropped, palette expanded, 16-bit samples
kept at 16 bits. Lossless formats must match exactly; JPEG must be closest to the right
orientation and near it.

Combinations a format cannot hold (``tools.SKIPPED``, each with its reason: CMYK in PNG; alpha,
palette and 16-bit in baseline JPEG; anything but 8-bit RGB(A) in WebP) are not test cells at all:
the suite's only skips are for absent hardware.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from service.jobs.images import ImageRejected, decode_image
from tests.harness import BAND_JSON, Api
from tests.reliability.tools import (
    FORMATS,
    MODES,
    ORIENTATIONS,
    SKIPPED,
    best_orientation,
    matrix,
    read_stored_input,
    sample,
    source_pixels,
)

JPEG_TOLERANCE = 3 * 257  # mean |error| in 16-bit units: 3 levels of 8 bits


def test_the_matrix_covers_every_representable_cell() -> None:
    cells = matrix()
    assert len(cells) + len(SKIPPED) == len(FORMATS) * len(MODES)
    assert {m for _, m in cells} == set(MODES)  # every mode goes through some format
    assert len(cells) * len(ORIENTATIONS) >= 160


@pytest.mark.parametrize(("fmt", "mode"), matrix())
def test_upload_is_accepted_with_the_right_orientation(api: Api, fmt: str, mode: str) -> None:
    for orientation in ORIENTATIONS:
        item = sample(fmt, mode, orientation)
        response = api.client.post(
            "/v1/restorations",
            files={"image": (f"x.{fmt.lower()}", item.data, "application/octet-stream")},
            data={"band_spec": BAND_JSON, "method": "notch"},
        )
        assert response.status_code == 202, (orientation, response.text)
        stored = read_stored_input(api.storage / "jobs" / response.json()["id"] / "input.png")
        assert stored.dtype == np.uint16
        assert stored.shape == item.expected.shape, orientation
        if item.lossy:
            best, error = best_orientation(stored, mode)
            assert best == orientation and error < JPEG_TOLERANCE, (orientation, best, error)
        else:
            np.testing.assert_array_equal(
                stored, item.expected, err_msg=f"orientation {orientation}"
            )


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_results_by_default(api: Api, fmt: str) -> None:
    """A 16-bit colour input is stored and restored at 16 bits (``output_bit_depth`` default)."""
    item = sample(fmt, "rgb16", 1)
    response = api.client.post(
        "/v1/restorations",
        files={"image": ("x", item.data, "application/octet-stream")},
        data={"band_spec": BAND_JSON, "method": "notch"},
    )
    assert response.status_code == 202, response.text
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    job = ctx.jobs.get(response.json()["id"]) or {}
    assert ctx.jobs.params(job)["output_bit_depth"] == 16


def _png16(array: np.ndarray, colour_type: int) -> bytes:
    """A 16-bit PNG written by hand (colour type 4, gray+alpha, has no writer in Pillow/OpenCV)."""
    height = array.shape[0]
    raw = b"".join(b"\0" + array[i].astype(">u2").tobytes() for i in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", array.shape[1], height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_sixteen_bit_gray_alpha_png_stays_gray_and_sixteen_bit() -> None:
    gray = source_pixels("gray16")[..., 0]
    alpha = np.full_like(gray, 40000)
    decoded = decode_image(_png16(np.stack([gray, alpha], -1), 4), max_pixels=1 << 20)
    assert decoded.bit_depth == 16 and decoded.pixels.shape == (*gray.shape, 1)
    np.testing.assert_array_equal(np.rint(decoded.pixels[..., 0] * 65535), gray)


def test_broken_sixteen_bit_colour_files_are_refused_cleanly() -> None:
    for fmt in ("PNG", "TIFF"):
        data = sample(fmt, "rgb16", 1).data
        for cut in (len(data) // 2, len(data) - 20):
            with pytest.raises(ImageRejected) as info:
                decode_image(data[:cut], max_pixels=1 << 20)
            assert info.value.code == "invalid_image"
