"""A hostile corpus of our own against the API in-process (issue #20): 1,040 generated files and
320 generated parameter sets to ``POST /v1/restorations``.

* Files: the malformed corpus of ``tools.malformed_corpus`` (truncated, bad CRC, 0 bytes, header
  only, wrong magic, polyglots, flipped bytes, garbage after a magic) plus hostile files that stay
  well-formed where a lazy check would look: PNGs whose chunks carry valid CRCs around bad
  compressed data, missing rows, bad filter bytes, a missing palette or an eXIf chunk after the
  pixels; 16-bit files cut short; float and 32-bit integer TIFFs with NaN, ±inf and any range;
  JPEGs cut mid-scan and with nonsense EXIF orientations; sides at and below the minimum.
* Parameter sets: every form field with hostile values (huge and non-finite numbers, deep or
  malformed JSON, path traversal, unknown names, empty model parts, long strings, unicode).

Every answer is a 202 or a 4xx JSON error ``{code, message}``: never a 5xx. And every file the
API accepts is one the worker decodes (``read_image`` of the stored input, what it runs on) to
finite, non-constant pixels: an accepted file never fails later for a reason the API could have
known.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from service.jobs.images import read_image
from tests.harness import Api, png_bytes, restore_form
from tests.reliability.tools import BOMB_FORM, is_problem_json, malformed_corpus

pytestmark = pytest.mark.slow

MALFORMED = 520
HOSTILE = 520
PARAMETER_SETS = 320
RNG_SEED = 20


# --------------------------------------------------------------------------------------------
# Hostile files
# --------------------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png(ihdr: tuple[int, int, int, int, int], raw: bytes, *, extra: bytes = b"") -> bytes:
    """A PNG with valid CRCs around ``raw`` (the filtered rows, compressed here)."""
    width, height, depth, colour, interlace = ihdr
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def _rows(rng: np.random.Generator, width: int, height: int, sample_bytes: int) -> bytes:
    rows = []
    for _ in range(height):
        rows.append(bytes([int(rng.integers(0, 5))]))
        rows.append(rng.integers(0, 256, width * sample_bytes, np.uint8).tobytes())
    return b"".join(rows)


def _tiff(arr: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".tiff", arr)
    assert ok
    return buffer.tobytes()


def _pil(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _exif_with(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _hostile_png(rng: np.random.Generator, variant: int) -> bytes:
    width, height = int(rng.integers(8, 40)), int(rng.integers(8, 40))
    colours = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
    colour = int(rng.choice(list(colours)))
    depth = 16 if colour != 3 and rng.random() < 0.5 else 8
    sample = colours[colour] * depth // 8
    raw = _rows(rng, width, height, sample)
    plte = _chunk(b"PLTE", rng.integers(0, 256, 3 * 256, np.uint8).tobytes())
    extra = plte if colour == 3 else b""
    ihdr = (width, height, depth, colour, 0)
    if variant == 0:  # valid, random pixels: accepted
        return _png(ihdr, raw, extra=extra)
    if variant == 1:  # rows missing
        return _png(ihdr, raw[: int(rng.integers(0, len(raw)))], extra=extra)
    if variant == 2:  # a bad filter byte
        broken = bytearray(raw)
        row = int(rng.integers(height)) * (1 + width * sample)
        broken[row] = int(rng.integers(5, 256))
        return _png(ihdr, bytes(broken), extra=extra)
    if variant == 3:  # palette image without its palette
        return _png((width, height, 8, 3, 0), _rows(rng, width, height, 1))
    if variant == 4:  # compressed data that is not zlib, with a valid CRC
        junk = rng.integers(0, 256, int(rng.integers(1, 200)), np.uint8).tobytes()
        header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + extra
            + _chunk(b"IDAT", junk)
            + _chunk(b"IEND", b"")
        )
    if variant == 5:  # eXIf after the pixels, any orientation value
        good = _png(ihdr, raw, extra=extra)
        value = int(rng.choice([0, 1, 5, 6, 8, 9, 255, 65535]))
        return good[:-12] + _chunk(b"eXIf", _exif_with(value)) + good[-12:]
    if variant == 6:  # interlaced, with too few bytes for its passes
        return _png((width, height, depth, colour, 1), raw[: len(raw) // 2], extra=extra)
    # an impossible IHDR combination (bit depth 16 with a palette, depth 3)
    bad = [(width, height, 16, 3, 0), (width, height, 3, 2, 0), (width, height, 8, 5, 0)]
    return _png(bad[int(rng.integers(len(bad)))], raw, extra=extra)


def _hostile_tiff(rng: np.random.Generator, variant: int) -> bytes:
    shape = (int(rng.integers(8, 32)), int(rng.integers(8, 32)))
    base = rng.random(shape)
    if variant == 0:  # non-finite floats somewhere: refused
        bad = float(rng.choice([np.nan, np.inf, -np.inf]))
        arr = base.astype(np.float32)
        arr[int(rng.integers(shape[0])), int(rng.integers(shape[1]))] = bad
        return _tiff(arr)
    if variant == 1:  # floats of any finite range: accepted (min-max)
        scale, offset = float(rng.choice([1e-30, 1e-3, 1, 1e6, 3e38])), float(rng.normal() * 10)
        return _tiff((base * scale + offset).astype(np.float32))
    if variant == 2:  # 32-bit integers of any range: accepted
        low = int(rng.integers(-(2**31), 2**31 - 10))
        span = int(rng.integers(1, 2**31 - 1))
        arr = np.clip(low + (base * span).astype(np.int64), -(2**31), 2**31 - 1)
        return _tiff(arr.astype(np.int32))
    if variant == 3:  # a constant float image: nothing to restore, refused
        return _tiff(np.full(shape, float(rng.normal()) * 100, np.float32))
    if variant == 4:  # 16-bit RGB cut short
        data = _tiff(rng.integers(0, 65535, (*shape, 3), np.uint16))
        return data[: int(rng.integers(8, len(data)))]
    # multi-page with a nonsense orientation in the first page
    pages = [Image.fromarray(rng.integers(0, 255, shape, np.uint8)) for _ in range(3)]
    value = int(rng.choice([0, 9, 1000, 6]))
    return _pil(pages[0], "TIFF", save_all=True, append_images=pages[1:], exif=_exif_with(value))


def _hostile_other(rng: np.random.Generator, variant: int) -> bytes:
    shape = (int(rng.integers(8, 48)), int(rng.integers(8, 48)), 3)
    image = Image.fromarray(rng.integers(0, 255, shape, np.uint8))
    if variant == 0:  # JPEG cut in its scan
        data = _pil(image, "JPEG", progressive=bool(rng.random() < 0.5))
        return data[: int(rng.integers(len(data) // 3, len(data)))]
    if variant == 1:  # JPEG with a nonsense orientation
        return _pil(image, "JPEG", exif=_exif_with(int(rng.choice([0, 9, 255, 65535]))))
    if variant == 2:  # WebP cut short
        data = _pil(image, "WEBP", lossless=bool(rng.random() < 0.5))
        return data[: int(rng.integers(12, len(data)))]
    if variant == 3:  # sides at and below the minimum
        side = int(rng.choice([1, 2, 7, 8]))
        return png_bytes(side, int(rng.choice([1, 8, 64])))
    # a 16-bit gray+alpha PNG cut short with the rest of the file intact
    data = _pil(Image.fromarray(rng.integers(0, 65535, shape[:2], np.uint16)), "PNG")
    return data[: len(data) // 2] + data[-12:]


def hostile_files(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    makers: list[tuple[str, Callable[[np.random.Generator, int], bytes], int]] = [
        ("png", _hostile_png, 8),
        ("tiff", _hostile_tiff, 6),
        ("other", _hostile_other, 5),
    ]
    for index in range(count):
        name, make, variants = makers[index % len(makers)]
        variant = (index // len(makers)) % variants
        yield f"{name}{variant}", make(rng, variant)


# --------------------------------------------------------------------------------------------
# Hostile parameter sets
# --------------------------------------------------------------------------------------------
HUGE = "9" * 5000
HOSTILE_VALUES: dict[str, list[str]] = {
    "method": ["bogus", "", " ", "NOTCH", "notch\x00", "é" * 300, "sagd", "ddnm", "auto"],
    "steps": ["0", "-1", "1001", HUGE, "1e3", "nan", "inf", "1.5", "0x10", "٣"],
    "seed": ["-1", str(2**32), HUGE, "nan", "1e400", " 7 "],
    "samples": ["0", "17", "-5", HUGE, "two"],
    "input_noise_std": ["nan", "inf", "-inf", "-1", "1e309", HUGE, "1e-400", "0.5"],
    "notch_width": ["nan", "-1", "inf", "1e309", "0", HUGE],
    "notch_rolloff": ["bogus", "", "HARD"],
    "estimator": ["bogus", "MEAN", "median"],
    "schedule": ["bogus", '{"kind":"fit"}', "{}", "model\n", "[" * 50],
    "output_bit_depth": ["0", "7", "32", "-8", "8.0", "00016", HUGE, "0x8", "inf"],
    "model": [",,,", " , ", "../../etc", "a:b", "a:-1", "a:" + HUGE, "x" * 5000, "Z!", "a,b,c,d"],
    "corruption_type": ["../x", "", "x" * 500, "no-such", "\x00", "%2e%2e"],
    "callback_url": ["file:///etc/passwd", "http://127.0.0.1:6379/", "gopher://x", "x" * 5000],
    "band_spec": [
        "{",
        "null",
        "[]",
        '"x"',
        "[" * 100_000 + "]" * 100_000,  # longer than a spec may be
        '{"regions":' + "[" * 30_000 + "]" * 30_000 + "}",  # deeper than a JSON parser recurses
        '{"regions": []}',
        '{"regions":[{"kind":"annulus","low":NaN,"high":0.4}]}',
        '{"regions":[{"kind":"annulus","low":' + HUGE + ',"high":0.4}]}',
        '{"regions":[{"kind":"annulus","low":1e999,"high":0.4}]}',
        '{"regions":[{"kind":"annulus","low":0.3,"high":0.1}]}',
        '{"regions":[{"kind":"notch","fy":0.1,"fx":0.1,"radius":-1}]}',
        '{"regions":[{"kind":"wedge","angle_deg":1e308,"tolerance_deg":5,"low":0,"high":1}]}',
        '{"regions":[{"kind":"box","fy":[0.1],"fx":[0.1,0.2]}]}',
        '{"regions":' + json.dumps([{"kind": "annulus", "low": 0.1, "high": 0.2}] * 5000) + "}",
        '{"units":"bogus","regions":[{"kind":"annulus","low":0.1,"high":0.2}]}',
        "x" * 70_000,
    ],
}


def hostile_parameter_sets(count: int, seed: int) -> Iterator[dict[str, str]]:
    """``count`` forms: each a notch restoration with one to three fields made hostile."""
    rng = np.random.default_rng(seed)
    fields = sorted(HOSTILE_VALUES)
    for index in range(count):
        form = restore_form()
        first = fields[index % len(fields)]  # every field, in turn
        chosen = {first, *rng.choice(fields, size=int(rng.integers(0, 3)))}
        for name in chosen:
            values = HOSTILE_VALUES[name]
            form[name] = values[int(rng.integers(len(values)))]
        if "band_spec" in form and "corruption_type" in chosen and rng.random() < 0.5:
            del form["band_spec"]
        yield form


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------
def _check_answer(response: Any, label: str) -> int:
    assert response.status_code < 500, (label, response.status_code, response.text[:300])
    assert response.status_code in (202,) or 400 <= response.status_code < 500, label
    if response.status_code != 202:
        assert is_problem_json(response), (label, response.text[:300])
    return int(response.status_code)


def test_hostile_files_are_refused_as_json_or_accepted_and_decodable(api: Api) -> None:
    outcomes: Counter[str] = Counter()
    corpus = [*malformed_corpus(MALFORMED, seed=RNG_SEED), *hostile_files(HOSTILE, RNG_SEED)]
    assert len(corpus) >= 1000
    for index, (kind, data) in enumerate(corpus):
        response = api.client.post(
            "/v1/restorations", files={"image": ("f", data, "image/png")}, data=BOMB_FORM
        )
        status = _check_answer(response, f"{index} {kind}")
        outcomes[f"{kind}:{status}"] += 1
        if status == 202:  # what the worker will run on: it decodes
            stored = api.storage / "jobs" / response.json()["id"] / "input.png"
            pixels = read_image(stored)
            assert pixels.dtype == np.float32 and pixels.shape[2] in (1, 3), (index, kind)
            assert np.isfinite(pixels).all() and 0 <= pixels.min() <= pixels.max() <= 1
            assert np.ptp(pixels) > 0, (index, kind)  # never "the image is constant" later
    print("hostile files:", json.dumps(dict(sorted(outcomes.items()))))
    accepted = sum(n for key, n in outcomes.items() if key.endswith(":202"))
    assert accepted >= 100  # the corpus reaches the accepting paths too
    assert sum(outcomes.values()) - accepted >= 600
    for refused in ("tiff0:422", "tiff3:422", "png1:422", "png2:422", "png4:422"):
        assert outcomes[refused] > 0, refused


def test_hostile_parameter_sets_are_refused_as_json(api: Api) -> None:
    statuses: Counter[int] = Counter()
    image = png_bytes(32, 24)
    forms = list(hostile_parameter_sets(PARAMETER_SETS, RNG_SEED))
    assert len(forms) >= 300
    for index, form in enumerate(forms):
        response = api.client.post("/v1/restorations", files={"image": ("x.png", image)}, data=form)
        statuses[_check_answer(response, f"{index} {str(form)[:200]}")] += 1
        if response.status_code != 202:
            message = response.json()["message"]
            assert "set_int_max_str_digits" not in message and "Traceback" not in message
    print("hostile parameter sets:", json.dumps(dict(sorted(statuses.items()))))
    assert statuses[422] >= 250
