"""Upload checks and decoding: formats × modes × EXIF orientations, bombs refused before decoding,
fuzzing, and the API's bounded check (``inspect_image``) agreeing with the worker's decode."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from service.jobs.images import (
    DecodedImage,
    ImageInfo,
    ImageRejected,
    decode_image,
    encode_png,
    inspect_image,
    read_image,
    sniff_format,
    stored_input,
)
from tests.harness import ORIENT

LIMIT = 4096 * 4096


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    if fmt == "WEBP":
        kwargs.setdefault("lossless", True)
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def pattern(width: int = 20, height: int = 12) -> np.ndarray:
    """An asymmetric RGB test pattern (so every orientation is distinguishable)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x < 5) * 255], -1).astype(
        np.uint8
    )


WRITABLE = {  # the modes Pillow can write in each format
    "PNG": ["L", "LA", "P", "RGB", "RGBA", "1"],
    "JPEG": ["L", "RGB", "CMYK"],
    "TIFF": ["L", "LA", "P", "RGB", "RGBA", "CMYK", "1"],
    "WEBP": ["RGB", "RGBA"],
}


@pytest.mark.parametrize(("fmt", "mode"), [(f, m) for f, modes in WRITABLE.items() for m in modes])
def test_modes_and_formats_decode_to_unit_float(fmt: str, mode: str) -> None:
    image = Image.fromarray(pattern()).convert(mode)
    decoded = decode_image(encode(image, fmt), max_pixels=LIMIT)
    assert decoded.format == fmt
    assert decoded.pixels.dtype == np.float32
    assert decoded.pixels.shape[:2] == (12, 20)
    assert decoded.pixels.shape[2] in (1, 3)
    assert 0.0 <= decoded.pixels.min() <= decoded.pixels.max() <= 1.0
    gray = mode in ("L", "LA", "1")
    assert decoded.pixels.shape[2] == (1 if gray else 3)


def test_sixteen_bit_is_kept() -> None:
    arr = (np.arange(16 * 16, dtype=np.uint32) * 251 % 65536).astype(np.uint16).reshape(16, 16)
    for fmt in ("PNG", "TIFF"):
        decoded = decode_image(encode(Image.fromarray(arr), fmt), max_pixels=LIMIT)
        assert decoded.bit_depth == 16
        np.testing.assert_allclose(decoded.pixels[..., 0] * 65535, arr, atol=0.5)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP", "JPEG"])
def test_exif_orientation_applied(orientation: int, fmt: str) -> None:
    arr = pattern()
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(arr), fmt, exif=exif.tobytes())
    decoded = decode_image(data, max_pixels=LIMIT)
    expected = ORIENT[orientation](arr).astype(np.float32) / 255
    assert decoded.pixels.shape == expected.shape
    tolerance = 0.2 if fmt == "JPEG" else 1e-6
    assert np.abs(decoded.pixels - expected).mean() < tolerance / 2 + 1e-6


def _png_header_only(width: int, height: int, *, color_type: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def _jpeg_sof(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


def _tiff_header(width: int, height: int) -> bytes:
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (279, 4, 1, width * height),
    ]
    body = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        body += struct.pack("<HHII", tag, typ, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + body + b"\0\0\0\0"


def _webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    payload = b"\x2f" + struct.pack("<I", bits) + b"\0" * 8
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


BOMBS = {
    "png 100k x 100k": _png_header_only(100_000, 100_000),
    "png gray 60k x 60k": _png_header_only(60_000, 60_000, color_type=0),
    "png 1 x 2^31": _png_header_only(1 << 20, 1 << 20),
    "png rgba wide": _png_header_only(200_000, 100, color_type=6),
    "jpeg SOF 65000^2": _jpeg_sof(65000, 65000),
    "jpeg SOF 65535 x 300": _jpeg_sof(65535, 300),
    "tiff 50k^2": _tiff_header(50_000, 50_000),
    "webp 16k^2": _webp_vp8l(16_384, 16_384),
    "gif screen": b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\0\0\0",
    "bmp": b"BM" + b"\0" * 12 + struct.pack("<IiiHH", 40, 30000, 30000, 1, 24),
    "psd": b"8BPS" + b"\0" * 30,
    "svg": b"<svg xmlns='http://www.w3.org/2000/svg' width='99999' height='99999'/>",
}


@pytest.mark.parametrize("check", [inspect_image, decode_image], ids=["api", "worker"])
@pytest.mark.parametrize("name", BOMBS)
def test_bombs_refused_before_decoding(name: str, check: Callable[..., object]) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ImageRejected) as info:
        check(BOMBS[name], max_pixels=LIMIT)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 20 * 1024 * 1024, f"{name}: {peak / 1e6:.1f} MB"
    assert 400 <= info.value.status < 500
    assert info.value.code in ("too_many_pixels", "unsupported_format", "invalid_image")


def test_many_frames_use_the_first_only() -> None:
    frames = [Image.fromarray(pattern()) for _ in range(50)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    decoded = decode_image(buffer.getvalue(), max_pixels=LIMIT)
    assert decoded.pixels.shape == (12, 20, 3)


def test_fuzzed_files_are_rejected_cleanly() -> None:
    """Truncations, byte flips and spliced headers: either a valid image or ImageRejected."""
    rng = np.random.default_rng(0)
    seeds = [
        encode(Image.fromarray(pattern()).convert(m), f)
        for m, f in (("RGB", "PNG"), ("L", "JPEG"), ("RGB", "TIFF"), ("RGB", "WEBP"), ("P", "PNG"))
    ]
    outcomes = {"ok": 0, "rejected": 0}
    for i in range(1200):
        data = bytearray(seeds[i % len(seeds)])
        kind = i % 4
        if kind == 0:
            data = data[: int(rng.integers(0, len(data)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 8))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        elif kind == 2:
            other = seeds[int(rng.integers(0, len(seeds)))]
            data = data[:16] + other[16:]  # polyglot: one format's header, another's body
        else:
            start = int(rng.integers(8, len(data)))
            data[start : start + 32] = bytes(rng.integers(0, 256, 32, dtype=np.uint8))
        try:
            info = inspect_image(bytes(data), max_pixels=LIMIT, min_side=1)
        except ImageRejected as exc:
            assert 400 <= exc.status < 500
            outcomes["rejected"] += 1
        else:  # accepted at submit: the worker decodes it to what the check announced
            decoded = decode_image(bytes(data), max_pixels=LIMIT, min_side=1)
            assert np.isfinite(decoded.pixels).all()
            assert announced(decoded) == info, i
            outcomes["ok"] += 1
    assert outcomes["rejected"] > 300
    assert outcomes["ok"] > 100


def announced(decoded: DecodedImage) -> ImageInfo:
    """What ``inspect_image`` should have said of an image the worker decoded."""
    return ImageInfo(
        decoded.width,
        decoded.height,
        decoded.channels,
        decoded.bit_depth,
        decoded.format,
        constant=bool(np.ptp(decoded.pixels) == 0),
    )


def test_png_roundtrip_for_worker(tmp_path: object) -> None:
    from pathlib import Path

    rng = np.random.default_rng(1)
    for shape in ((9, 7, 1), (9, 7, 3)):
        pixels = rng.random(shape).astype(np.float32)
        path = Path(str(tmp_path)) / f"x{shape[2]}.png"
        path.write_bytes(encode_png(pixels, 16))
        back = read_image(path)
        assert back.shape == shape
        np.testing.assert_allclose(back, pixels, atol=1 / 65535)
    assert sniff_format(b"RIFF\0\0\0\0WEBPVP8 ") == "WEBP"
    assert sniff_format(b"RIFF\0\0\0\0AVI LIST") is None


def test_uploads_are_stored_as_uploaded_and_the_worker_reads_what_was_announced(
    tmp_path: Path,
) -> None:
    """Nothing is re-encoded in the API: the stored input is the upload, and the worker's read of
    it has the size (after EXIF orientation), channels and bit depth the API's check announced."""
    rng = np.random.default_rng(3)
    cases: dict[str, tuple[Image.Image, dict[str, object]]] = {
        "gray": (Image.fromarray(rng.integers(0, 255, (20, 30), np.uint8)), {}),
        "rgb": (Image.fromarray(rng.integers(0, 255, (20, 30, 3), np.uint8)), {}),
        "gray16": (Image.fromarray(rng.integers(0, 65535, (20, 30), np.uint16)), {}),
        "palette": (Image.fromarray(rng.integers(0, 255, (20, 30), np.uint8)).convert("P"), {}),
        "rgba": (Image.fromarray(rng.integers(0, 255, (20, 30, 4), np.uint8)), {}),
        "gray+tRNS": (
            Image.fromarray(rng.integers(0, 255, (20, 30), np.uint8)),
            {"transparency": 7},
        ),
        "float": (Image.fromarray(rng.random((20, 30)).astype(np.float32) * 7 - 3), {}),
    }
    rotated = Image.fromarray(rng.integers(0, 255, (20, 30, 3), np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6
    cases["rotated"] = (rotated, {"exif": exif.tobytes()})
    for name, (image, options) in cases.items():
        fmt = "TIFF" if image.mode == "F" else "PNG"
        data = encode(image, fmt, **options)
        info = inspect_image(data, max_pixels=1 << 20)
        stored = stored_input(info, data)
        assert stored == data, name
        path = tmp_path / f"{name}.input"
        path.write_bytes(stored)
        pixels = read_image(path)
        decoded = decode_image(data, max_pixels=1 << 20)
        np.testing.assert_array_equal(pixels, decoded.pixels, err_msg=name)
        assert announced(decoded) == info, name
        expected_channels = 1 if name.startswith(("gray", "float")) else 3
        assert info.channels == expected_channels, name
        assert (info.height, info.width) == ((30, 20) if name == "rotated" else (20, 30)), name


def test_exif_orientation_after_the_pixels_is_read_by_the_check_too() -> None:
    """A PNG may carry its eXIf chunk after the image data: the API reads it without decoding
    pixels and swaps the sides as the worker's decode does."""
    arr = pattern()
    exif = Image.Exif()
    exif[0x0112] = 8
    data = encode(Image.fromarray(arr), "PNG", exif=exif.tobytes())
    start = data.index(b"eXIf") - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    chunk = data[start : start + 12 + length]
    moved = data[:start] + data[start + len(chunk) : -12] + chunk + data[-12:]  # before IEND
    assert moved.index(b"eXIf") > moved.index(b"IDAT")
    info = inspect_image(moved, max_pixels=LIMIT)
    decoded = decode_image(moved, max_pixels=LIMIT)
    assert (info.height, info.width) == decoded.pixels.shape[:2] == (20, 12)
    np.testing.assert_allclose(decoded.pixels, ORIENT[8](arr).astype(np.float32) / 255)


def _constant_cases() -> dict[str, bytes]:
    rng = np.random.default_rng(5)
    rgb16 = np.zeros((16, 24, 3), np.uint16)
    nearly = rgb16.copy()
    nearly[3, 4, 1] = 1  # differs in the low byte only: constant at 8 bits, not at 16
    hidden = rgb16.copy()
    hidden[3, 4, 2] = 1  # red + 1: the 16-bit luma rounds it away, the samples differ
    solid = np.empty_like(rgb16)
    solid[...] = (3000, 2000, 1000)  # one colour, not one value
    palette = Image.fromarray(np.tile(np.arange(2, dtype=np.uint8), (16, 12))).convert("P")
    palette.putpalette([40, 40, 40] * 256)  # two indices, one colour
    checker = (np.indices((64, 64)).sum(0) % 2 * 200 + 20).astype(np.uint8)  # block means alike
    return {
        "gray8 constant": encode(Image.new("L", (16, 16), 90), "PNG"),
        "rgb constant gray": encode(Image.new("RGB", (16, 16), (7, 7, 7)), "PNG"),
        "rgb solid red": encode(Image.new("RGB", (16, 16), (255, 0, 0)), "PNG"),
        "rgba constant, alpha varies": encode(
            Image.fromarray(
                np.dstack(
                    [np.full((16, 16, 3), 9, np.uint8), rng.integers(0, 255, (16, 16))]
                ).astype(np.uint8)
            ),
            "PNG",
        ),
        "rgb16 zeros": cv2.imencode(".png", rgb16)[1].tobytes(),
        "rgb16 one low bit": cv2.imencode(".png", nearly)[1].tobytes(),
        "rgb16 red low bit": cv2.imencode(".png", hidden)[1].tobytes(),
        "rgb16 solid colour": cv2.imencode(".png", solid)[1].tobytes(),
        "webp solid colour": encode(Image.new("RGB", (16, 16), (50, 60, 70)), "WEBP"),
        "palette one colour": encode(palette, "PNG"),
        "jpeg constant": encode(Image.new("L", (64, 64), 128), "JPEG", quality=95),
        "jpeg checkerboard": encode(Image.fromarray(checker), "JPEG", quality=95),
        "tiff float constant": encode(Image.fromarray(np.full((16, 16), -3.5, np.float32)), "TIFF"),
        "tiff int32 constant": encode(Image.fromarray(np.full((16, 16), 2**30, np.int32)), "TIFF"),
        "tiff rgb varies": encode(
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)), "TIFF"
        ),
        "webp constant": encode(Image.new("RGB", (16, 16), (50, 50, 50)), "WEBP"),
    }


@pytest.mark.parametrize(("name", "data"), list(_constant_cases().items()))
def test_the_check_knows_a_constant_image_as_the_worker_decodes_it(name: str, data: bytes) -> None:
    """``constant`` (nothing to restore: the library refuses such an image) is what the worker's
    decode shows: every sample equal, alpha aside, at full precision."""
    info = inspect_image(data, max_pixels=LIMIT)
    pixels = decode_image(data, max_pixels=LIMIT).pixels
    assert info.constant is bool(np.ptp(pixels) == 0), name
