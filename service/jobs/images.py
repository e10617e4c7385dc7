"""Decoding untrusted uploads and the PNG files exchanged between API and workers.

Only PNG, JPEG, TIFF and WebP are decoded, recognised by their magic bytes (not by the client's
name or content type). Dimensions are read from the header and checked against the pixel limit
*before* any pixel is decoded (RELIABILITY.md). The decoder's expected failures become
:class:`ImageRejected` (a 4xx); anything else is a bug and is left to propagate.

Every accepted image becomes float32 ``(H, W, C)`` in [0, 1] with C = 1 (gray) or 3 (RGB): EXIF
orientation applied, alpha dropped, palette expanded, 16-bit kept at 16 bits. The worker receives
it as a normalized PNG at the input's bit depth (``encode_png``), which is lossless.

Pillow reads 16-bit colour and 16-bit gray+alpha files (PNG colour types 2, 4, 6; TIFF with 16-bit
samples) at 8 bits, so their pixels are decoded again with OpenCV at 16 bits once Pillow has
checked the header and the file; the EXIF orientation Pillow read is applied to them in numpy.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
from PIL import Image, ImageOps

MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"WEBP", 8, "WEBP"),  # after b"RIFF" + little-endian size
)
# What a corrupt or hostile file can make Pillow raise while reading headers or pixels.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    SyntaxError,  # Pillow's "broken PNG file", bad chunks
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    Image.DecompressionBombError,
    cv2.error,  # OpenCV's decoder (16-bit colour files)
)
_TO_RGB = {"P", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_TO_GRAY = {"1", "LA", "La"}
# EXIF orientation → the numpy transform of an (H, W, C) array (what ImageOps.exif_transpose does).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}


class ImageRejected(ValueError):
    """An upload that is not an acceptable image; carries an HTTP status and an error code."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # float32 (H, W, C) in [0, 1], C in (1, 3)
    bit_depth: int  # 8 or 16
    format: str
    plain_png: bool = False  # the upload itself is a PNG that read_png reads as ``pixels``

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2]) if self.pixels.ndim == 3 else 1


def sniff_format(head: bytes) -> str | None:
    """The allowlisted format named by the file's magic bytes, or None."""
    for magic, offset, name in MAGIC:
        if head[offset : offset + len(magic)] == magic and (offset == 0 or head[:4] == b"RIFF"):
            return name
    return None


def read_header(handle: IO[bytes], fmt: str) -> tuple[int, int]:
    """``(width, height)`` from an image's header, read from a file-like without reading the
    pixels (Pillow parses headers lazily): lets a caller refuse junk before loading all of it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(handle, formats=[fmt]) as image:
                width, height = image.size
    except DECODE_ERRORS as exc:
        raise ImageRejected("invalid_image", f"not a readable {fmt} header") from exc
    return int(width), int(height)


def check_dimensions(width: int, height: int, *, max_pixels: int, min_side: int) -> None:
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            status=413,
        )
    if min(width, height) < min_side:
        raise ImageRejected(
            "image_too_small", f"image is {width}x{height}; each side must be >= {min_side}"
        )


def decode_image(data: bytes, *, max_pixels: int, min_side: int = 8) -> DecodedImage:
    """Decode an untrusted upload into float32 (H, W, C) in [0, 1] (see module docstring)."""
    if not data:
        raise ImageRejected("empty_file", "the uploaded file is empty")
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise ImageRejected(
            "unsupported_format", "not a PNG, JPEG, TIFF or WebP file (by its magic bytes)", 415
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # corrupt EXIF etc.: not worth a log line
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])  # reads the header only
            width, height = image.size
            check_dimensions(width, height, max_pixels=max_pixels, min_side=min_side)
            image.load()
            wide = _wide_samples(image, fmt, data)
            plain = _plain_png(image, fmt, data)
            if wide is not None:
                pixels, bit_depth = _decode_wide(data, image, gray=wide == "gray"), 16
            else:
                pixels, bit_depth = _to_array(ImageOps.exif_transpose(image))
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", f"image refused: {exc}", 413) from exc
    except Image.DecompressionBombWarning as exc:
        raise ImageRejected("too_many_pixels", f"image refused: {exc}", 413) from exc
    except DECODE_ERRORS as exc:
        raise ImageRejected("invalid_image", f"could not decode the {fmt} image") from exc
    if not np.isfinite(pixels).all():
        raise ImageRejected("invalid_image", "image holds non-finite values")
    return DecodedImage(pixels=pixels, bit_depth=bit_depth, format=fmt, plain_png=plain)


# (bit depth, colour type) of PNGs whose samples read_png (OpenCV) reads exactly as decode_image:
# 8-bit gray, 8-bit RGB, 16-bit gray.
_PLAIN_PNG = {(8, 0), (8, 2), (16, 0)}


def _plain_png(image: Image.Image, fmt: str, data: bytes) -> bool:
    """Whether the upload can be stored as it came instead of re-encoded: a gray or RGB PNG with
    no transparency and no EXIF rotation, which :func:`read_png` decodes to the same pixels."""
    if fmt != "PNG" or len(data) <= 25 or (data[24], data[25]) not in _PLAIN_PNG:
        return False
    if "transparency" in image.info:
        return False
    return image.getexif().get(0x0112, 1) in (1, None)


def stored_input(decoded: DecodedImage, data: bytes) -> bytes:
    """The bytes the API stores as a job's ``input.png``: the upload itself when it is a plain
    PNG (no re-encoding), else the decoded pixels as a PNG at their bit depth (lossless)."""
    return data if decoded.plain_png else encode_png(decoded.pixels, decoded.bit_depth)


def _wide_samples(image: Image.Image, fmt: str, data: bytes) -> str | None:
    """``"gray"`` or ``"rgb"`` for a 16-bit file that Pillow reads at 8 bits, else None."""
    if fmt == "PNG":
        # IHDR is the first chunk (Pillow checked it): bit depth at byte 24, colour type at 25.
        if len(data) > 25 and data[24] == 16 and data[25] in (2, 4, 6):
            return "gray" if data[25] == 4 else "rgb"
        return None
    if fmt == "TIFF" and image.mode in ("RGB", "RGBA", "RGBX", "LA"):
        bits = getattr(image, "tag_v2", {}).get(258)
        if 16 in (bits if isinstance(bits, tuple) else (bits,)):
            return "gray" if image.mode == "LA" else "rgb"
    return None


def _decode_wide(data: bytes, image: Image.Image, *, gray: bool) -> np.ndarray:
    """16-bit samples with OpenCV (dimensions already checked), alpha dropped, EXIF orientation
    applied; float32 (H, W, C) in [0, 1]."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != (image.height, image.width):
        raise ImageRejected("invalid_image", f"could not decode the 16-bit {image.format} image")
    if arr.ndim == 2:
        arr = arr[..., None]
    arr = arr[..., :1] if gray else arr[..., 2::-1]  # OpenCV gives BGR(A); gray+alpha as BGRA
    if arr.shape[2] not in (1, 3):
        raise ImageRejected("invalid_image", f"unexpected channels in the {image.format} image")
    orientation = image.getexif().get(0x0112, 1)
    transform = _ORIENT.get(orientation) if isinstance(orientation, int) else None
    if transform is not None:
        arr = transform(arr)
    return np.ascontiguousarray(arr, dtype=np.float32) / 65535.0


def _unit_range(arr: np.ndarray, full_scale: float) -> np.ndarray:
    """One rule for 32-bit integer and float images (docs/API.md): non-finite values are refused
    (NaN and ±infinity alike); values within ``[0, full_scale]`` (65535 for integers, 1 for
    floats) are read as fractions of it; any other range is mapped linearly from its minimum and
    maximum onto ``[0, 1]``. float32 out."""
    if not np.isfinite(arr).all():
        raise ImageRejected("invalid_image", "image holds non-finite values (NaN or infinity)")
    if arr.size == 0:
        return arr.astype(np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0.0 and hi <= full_scale:
        return (arr / full_scale).astype(np.float32)
    span = hi - lo
    unit = (arr - lo) / span if span > 0 else np.zeros_like(arr)
    return unit.astype(np.float32)


def _to_array(image: Image.Image) -> tuple[np.ndarray, int]:
    mode = image.mode
    if mode.startswith("I;16"):
        arr = np.asarray(image).astype(np.float32) / 65535.0
        return arr[..., None], 16
    if mode == "I":
        return _unit_range(np.asarray(image, dtype=np.float64), 65535.0)[..., None], 16
    if mode == "F":
        return _unit_range(np.asarray(image, dtype=np.float64), 1.0)[..., None], 16
    if mode in _TO_GRAY:
        image = image.convert("L")
    elif mode in _TO_RGB:
        image = image.convert("RGBA" if mode in ("P", "PA") else "RGB").convert("RGB")
    elif mode not in ("L", "RGB"):
        image = image.convert("RGB")
    arr = np.asarray(image, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr, 8


def encode_png(pixels: np.ndarray, bit_depth: int = 16, *, compression: int | None = None) -> bytes:
    """PNG bytes of float (H, W[, C]) data in [0, 1] at 8 or 16 bits (C = 1 or 3).

    ``compression`` None: 0 (stored, fastest) up to one megapixel, else 1 (fast deflate)."""
    if compression is None:
        compression = 0 if np.size(pixels) <= 1 << 20 else 1
    # float32 is exact enough: k/65535 scaled back rounds to k (error < 0.01 of a level).
    arr = np.asarray(pixels, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"expected (H, W), (H, W, 1) or (H, W, 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr)
    unit = np.rint(np.clip(arr, 0.0, 1.0) * (65535.0 if bit_depth == 16 else 255.0))
    ints: np.ndarray[Any, np.dtype[np.integer[Any]]] = (
        unit.astype(np.uint16) if bit_depth == 16 else unit.astype(np.uint8)
    )
    if ints.ndim == 3:
        ints = np.ascontiguousarray(ints[..., ::-1])  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", ints, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ValueError("PNG encoding failed")
    return bytes(buf.tobytes())


def read_png(path: Path) -> np.ndarray:
    """A PNG written by :func:`encode_png` as float32 (H, W, C) in [0, 1]."""
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ValueError(f"cannot read PNG {path.name}")
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    out = arr.astype(np.float32) / scale
    if out.ndim == 2:
        return out[..., None]
    return np.ascontiguousarray(out[..., 2::-1])  # BGR(A) -> RGB
