"""Checking untrusted uploads in the API, and decoding them to float32 in the worker.

Only PNG, JPEG, TIFF and WebP are accepted, recognised by their magic bytes (not by the client's
name or content type). Dimensions are read from the header and checked against the pixel limit
*before* any pixel is decoded (RELIABILITY.md). The decoders' expected failures become
:class:`ImageRejected` (a 4xx); anything else is a bug and is left to propagate.

Two steps, so that the API's memory per upload stays bounded (issue #20):

- :func:`inspect_image` (API): the header (format, size, mode, bit depth, EXIF orientation) and
  a bounded check that every pixel decodes, without float pixels: PNG, WebP and 16-bit TIFF
  through OpenCV into an 8-bit gray buffer (1 byte a pixel), JPEG at 1/8 scale, other TIFFs
  natively (at most 4 bytes a pixel), 32-bit float pixels checked for NaN and infinity in
  strips. It also says whether the image is constant (every sample one value: the library
  refuses to restore it), exactly, with a second bounded pass only for images whose gray
  rendering is constant. The upload is then stored as it came (:func:`stored_input`).
- :func:`decode_image` (worker; :func:`read_image` reads a stored input): the pixels as float32
  ``(H, W, C)`` in [0, 1], converted once from the decoder's integers (no float64 copy): EXIF
  orientation applied, alpha dropped, palette expanded, 16-bit kept at 16 bits, C = 1 or 3.

32-bit integer and float pixels follow one rule (docs/API.md): NaN and ±infinity are refused
(at submit); values within full scale (65535 for integers, 1 for floats) are read as fractions of
it, any other range is mapped from its minimum and maximum onto [0, 1].

Pillow reads 16-bit colour and 16-bit gray+alpha files (PNG colour types 2, 4, 6; TIFF with 16-bit
samples) at 8 bits, so their pixels are decoded with OpenCV at 16 bits once Pillow has read the
header; the EXIF orientation Pillow reads is applied to them in numpy.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

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
#: What a stored input is read with in the worker: the API checked it against the real limit.
STORED_MAX_PIXELS = 1 << 31
_TO_RGB = {"P", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_TO_GRAY = {"1", "LA", "La"}
_STRIP_ROWS = 256  # rows of float pixels checked at a time
# EXIF orientation → the numpy transform of an (H, W, C) array (what ImageOps.exif_transpose does).
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
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
class ImageInfo:
    """What the API knows of an accepted upload without its float pixels: the size after EXIF
    orientation, the channels after alpha is dropped (1 gray, 3 RGB) and the bit depth (8, 16)."""

    width: int
    height: int
    channels: int
    bit_depth: int
    format: str
    constant: bool = False  # every sample has one value: nothing to restore


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # float32 (H, W, C) in [0, 1], C in (1, 3)
    bit_depth: int  # 8 or 16
    format: str

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


def read_header(handle: Any, fmt: str) -> tuple[int, int]:
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


def _format_of(data: bytes) -> str:
    if not data:
        raise ImageRejected("empty_file", "the uploaded file is empty")
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise ImageRejected(
            "unsupported_format", "not a PNG, JPEG, TIFF or WebP file (by its magic bytes)", 415
        )
    return fmt


@contextlib.contextmanager
def _refusals(fmt: str) -> Iterator[None]:
    """Pillow's and OpenCV's expected failures as :class:`ImageRejected` (bombs: 413)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # corrupt EXIF etc.: not worth a log line
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", f"image refused: {exc}", 413) from exc
    except DECODE_ERRORS as exc:
        raise ImageRejected("invalid_image", f"could not decode the {fmt} image") from exc


def inspect_image(data: bytes, *, max_pixels: int, min_side: int = 8) -> ImageInfo:
    """Check an untrusted upload with bounded memory (see the module docstring): what
    :func:`decode_image` will make of it, or :class:`ImageRejected`."""
    fmt = _format_of(data)
    with _refusals(fmt), Image.open(io.BytesIO(data), formats=[fmt]) as image:
        width, height = image.size
        check_dimensions(width, height, max_pixels=max_pixels, min_side=min_side)
        channels, bit_depth = _layout(image, fmt, data)
        orientation = _orientation(image, fmt, data)
        constant = _check_pixels(image, fmt, data)
    if orientation in (5, 6, 7, 8):  # a quarter turn or a transposition swaps the sides
        width, height = height, width
    return ImageInfo(int(width), int(height), channels, bit_depth, fmt, constant)


def stored_input(info: ImageInfo, data: bytes) -> bytes:
    """The bytes the API stores as a job's input: the upload as it came (``info`` says it passed
    :func:`inspect_image`); the worker decodes it with :func:`read_image`."""
    del info  # the upload itself, whatever its format: nothing is re-encoded in the API
    return data


def _layout(image: Image.Image, fmt: str, data: bytes) -> tuple[int, int]:
    """``(channels, bit depth)`` of what :func:`decode_image` makes of the file, from its header
    (the same rules as :func:`_to_array`)."""
    wide = _wide_samples(image, fmt, data)
    if wide is not None:
        return (1 if wide == "gray" else 3), 16
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return 1, 16
    if mode == "L" or mode in _TO_GRAY:
        return 1, 8
    return 3, 8


def _check_pixels(image: Image.Image, fmt: str, data: bytes) -> bool:
    """Decode every pixel once within a small buffer (never float): the file is complete and
    readable by the decoder the worker uses, and 32-bit float pixels are finite. Returns whether
    every sample of the image the worker will decode has one value (:func:`_constant_samples`)."""
    if fmt in ("PNG", "WEBP") or _wide_samples(image, fmt, data) is not None:
        # Into 8-bit gray (1 B/pixel): libpng converts row by row, libtiff strip by strip;
        # libwebp decodes to BGR first (3 B/pixel), still a third of what Pillow holds for it.
        flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION
        gray = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if gray is None or gray.shape[:2] != (image.height, image.width):
            raise ImageRejected("invalid_image", f"could not decode the {fmt} image")
        if gray.min() != gray.max():
            return False
        if fmt == "PNG" and data[24] <= 8 and data[25] == 0:  # 8-bit (or less) gray: exact
            return True
        del gray
        return _constant_samples(image, fmt, data)  # rare: a constant-looking image
    if fmt == "JPEG":
        # libjpeg scales by 1/8 while decoding every block: the whole file read at 1/64 memory.
        image.draft(image.mode, ((image.width + 7) // 8, (image.height + 7) // 8))
    image.load()
    if image.mode == "F":
        _check_finite(image)
    constant = _constant_bands(image)
    if constant and fmt == "JPEG":  # block means alike; the full-size pixels may still differ
        with Image.open(io.BytesIO(data), formats=[fmt]) as full:
            full.load()
            constant = _constant_bands(full)
    return constant


def _constant_samples(image: Image.Image, fmt: str, data: bytes) -> bool:
    """Whether every sample (alpha aside) of what the worker decodes has one value, for a file
    whose 8-bit gray rendering is constant (rare), within 2 bytes a pixel where it matters:
    16-bit gray first; a gray source is then settled; a 16-bit colour PNG or TIFF by its high
    bytes and then its low bytes (Pillow, one byte a sample each); an 8-bit colour file by
    OpenCV's full decode."""
    buffer = np.frombuffer(data, np.uint8)
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION
    gray = cv2.imdecode(buffer, flags)
    if gray is None:
        raise ImageRejected("invalid_image", f"could not decode the {fmt} image")
    if gray.min() != gray.max():
        return False
    del gray
    wide = _wide_samples(image, fmt, data)
    if (fmt == "PNG" and data[25] in (0, 4)) or wide == "gray":
        return True  # gray (alpha aside) at full depth: settled
    if wide == "rgb":
        return all(_wide_bytes_constant(data, fmt, order) for order in ("B", "L"))
    if wide is not None:
        return False
    arr = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None:
        raise ImageRejected("invalid_image", f"could not decode the {fmt} image")
    if arr.ndim == 3:
        arr = arr[..., :1] if arr.shape[2] == 2 else arr[..., :3]
    return bool(arr.min() == arr.max())


def _wide_bytes_constant(data: bytes, fmt: str, order: str) -> bool:
    """Whether one byte of every 16-bit sample of a colour PNG or TIFF has one value, alpha
    aside: Pillow decodes one byte a sample, and the unpacker's byte order picks which one
    (``"B"`` and ``"L"``: between them both bytes, whatever the file's or the host's order).
    False where Pillow cannot (the worker decides then)."""
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as wide:
            tile = wide.tile[0]
            args = (tile.args,) if isinstance(tile.args, str) else tuple(tile.args or ())
            rawmode = args[0] if args and isinstance(args[0], str) else None
            if rawmode is None or rawmode[-4:-1] != ";16" or len(wide.tile) != 1:
                return False
            swapped = (rawmode[:-1] + order, *args[1:])
            wide.tile = [tile._replace(args=swapped[0] if isinstance(tile.args, str) else swapped)]
            wide.load()
            return _constant_bands(wide)
    except DECODE_ERRORS:
        return False


def _constant_bands(image: Image.Image) -> bool:
    """Whether every sample of a loaded image (alpha aside) has one value, from Pillow's extrema
    (no copy). Modes that the worker converts through a palette or another colour space answer
    False: the worker's decode decides for them."""
    bands = {"L": 1, "1": 1, "I": 1, "F": 1, "RGB": 3, "RGBA": 3, "RGBX": 3, "LA": 1}
    count = 1 if image.mode.startswith("I;16") else bands.get(image.mode)
    if count is None:
        return False
    extrema = image.getextrema()
    pairs = [extrema] if not isinstance(extrema[0], tuple) else list(extrema)[:count]
    values = {value for pair in pairs for value in pair}
    return len(values) == 1


def _check_finite(image: Image.Image) -> None:
    """NaN and ±infinity refused alike, strip by strip (a strip of float32 at a time)."""
    for top in range(0, image.height, _STRIP_ROWS):
        box = (0, top, image.width, min(image.height, top + _STRIP_ROWS))
        if not np.isfinite(np.asarray(image.crop(box))).all():
            raise ImageRejected("invalid_image", "image holds non-finite values (NaN or infinity)")


def _png_chunks_up_front(data: bytes) -> bytes:
    """The PNG with the chunks that follow its image data (an ``eXIf`` or XMP chunk may) moved
    before it: opening it gives Pillow every chunk without decoding a pixel, so the orientation
    read from it is the one Pillow finds after decoding the original."""
    pos, first_idat, tail = 8, -1, []
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data) or kind == b"IEND":
            break
        if kind == b"IDAT":
            first_idat = pos if first_idat < 0 else first_idat
        elif first_idat >= 0:
            tail.append(data[pos:end])
        pos = end
    if first_idat < 0 or not tail:
        return data
    return data[:first_idat] + b"".join(tail) + data[first_idat:]


def _orientation(image: Image.Image, fmt: str, data: bytes) -> int:
    """The EXIF orientation still to apply (1 to 8; 1 for none or nonsense), read without
    decoding pixels. A TIFF's is 1: Pillow gives its size already oriented and applies it as it
    loads, and OpenCV applies it too."""
    if fmt == "TIFF":
        return 1
    if fmt == "PNG":
        with Image.open(io.BytesIO(_png_chunks_up_front(data)), formats=["PNG"]) as header:
            value = Image.Image.getexif(header).get(0x0112, 1)  # not PngImageFile's: it decodes
    else:
        value = image.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and value in _ORIENT else 1


def decode_image(data: bytes, *, max_pixels: int, min_side: int = 8) -> DecodedImage:
    """Decode an image into float32 (H, W, C) in [0, 1] (see the module docstring)."""
    fmt = _format_of(data)
    with _refusals(fmt), Image.open(io.BytesIO(data), formats=[fmt]) as image:
        width, height = image.size
        check_dimensions(width, height, max_pixels=max_pixels, min_side=min_side)
        wide = _wide_samples(image, fmt, data)
        if wide is not None:
            orientation = _orientation(image, fmt, data)
            pixels = _decode_wide(data, image, gray=wide == "gray", orient=orientation)
            bit_depth = 16
        else:
            image.load()
            pixels, bit_depth = _to_array(image, _orientation(image, fmt, data))
    return DecodedImage(pixels=pixels, bit_depth=bit_depth, format=fmt)


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


def _unit_float(native: np.ndarray, full_scale: float, orientation: int) -> np.ndarray:
    """``native`` (H, W[, C]) oriented and converted once to float32 (H, W, C), divided in place
    by ``full_scale``."""
    arr = native[..., None] if native.ndim == 2 else native
    transform = _ORIENT.get(orientation)
    if transform is not None:
        arr = transform(arr)
    out = np.array(arr, dtype=np.float32, order="C")  # the one float copy, writable
    np.divide(out, np.float32(full_scale), out=out)
    return out


def _decode_wide(data: bytes, image: Image.Image, *, gray: bool, orient: int) -> np.ndarray:
    """16-bit samples with OpenCV (dimensions already checked), alpha dropped, EXIF orientation
    applied; float32 (H, W, C) in [0, 1]."""
    flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != (image.height, image.width):
        raise ImageRejected("invalid_image", f"could not decode the 16-bit {image.format} image")
    if arr.ndim == 2:
        arr = arr[..., None]
    arr = arr[..., :1] if gray else arr[..., 2::-1]  # OpenCV gives BGR(A); gray+alpha as BGRA
    if arr.shape[2] not in (1, 3):
        raise ImageRejected("invalid_image", f"unexpected channels in the {image.format} image")
    return _unit_float(arr, 65535.0, orient)


def _unit_range(native: np.ndarray, full_scale: float, orientation: int) -> np.ndarray:
    """One rule for 32-bit integer and float images (docs/API.md): non-finite values are refused
    (NaN and ±infinity alike); values within ``[0, full_scale]`` (65535 for integers, 1 for
    floats) are read as fractions of it; any other range is mapped linearly from its minimum and
    maximum onto ``[0, 1]`` (a constant one onto 0). float32 out, computed in float32."""
    if native.dtype.kind == "f" and not np.isfinite(native).all():
        raise ImageRejected("invalid_image", "image holds non-finite values (NaN or infinity)")
    if native.size == 0:
        return _unit_float(native, 1.0, orientation)
    lo, hi = native.min(), native.max()
    if lo >= 0 and hi <= full_scale:
        return _unit_float(native, full_scale, orientation)
    span = float(hi) - float(lo)
    if span == 0.0:
        return _unit_float(np.zeros_like(native), 1.0, orientation)
    if native.dtype.kind == "i":  # v - lo exactly, as uint32 (it lies in [0, 2**32)): distinct
        shifted = native.astype(np.int32).view(np.uint32) - np.array(lo, np.int32).view(np.uint32)
        out = _unit_float(shifted, span, orientation)  # values stay distinct in float32
    else:
        # Distinct float32 values keep a non-zero difference; halved first where it would
        # pass float32's largest value.
        scale = 0.5 if span > 1e38 else 1.0
        out = _unit_float(native, 1.0 / scale, orientation)
        out -= np.float32(float(lo) * scale)
        np.divide(out, np.float32(span * scale), out=out)
    np.clip(out, 0.0, 1.0, out=out)  # float32 rounding at the ends
    return out


def _to_array(image: Image.Image, orientation: int) -> tuple[np.ndarray, int]:
    mode = image.mode
    if mode.startswith("I;16"):
        return _unit_float(np.asarray(image), 65535.0, orientation), 16
    if mode in ("I", "F"):
        return _unit_range(np.asarray(image), 65535.0 if mode == "I" else 1.0, orientation), 16
    if mode in _TO_GRAY:
        image = image.convert("L")
    elif mode in _TO_RGB:
        image = image.convert("RGBA" if mode in ("P", "PA") else "RGB").convert("RGB")
    elif mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return _unit_float(np.asarray(image), 255.0, orientation), 8


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


def read_image(path: Path) -> np.ndarray:
    """A stored image as float32 (H, W, C) in [0, 1]: a job's input as uploaded (any accepted
    format, decoded by :func:`decode_image`), or a PNG written by :func:`encode_png`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read image {path.name}") from exc
    try:
        return decode_image(data, max_pixels=STORED_MAX_PIXELS, min_side=1).pixels
    except ImageRejected as exc:
        raise ValueError(f"cannot read image {path.name}: {exc}") from exc
