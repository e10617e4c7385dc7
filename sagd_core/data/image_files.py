"""Reading and writing single image files with OpenCV (RELIABILITY.md: images).

Reading is defensive, since folders may hold anything:

- only PNG, JPEG and TIFF are decoded, recognised by their magic bytes, not their suffix;
- files larger than ``max_bytes`` are refused before being read;
- the dimensions are parsed from the file header (PNG ``IHDR``, JPEG ``SOFn``, TIFF first IFD) and
  checked against ``max_pixels`` *before* any pixel is decoded (OpenCV has no header-only API);
- the bytes are read by Python and decoded with ``cv2.imdecode`` (so non-ASCII paths work) using
  ``IMREAD_ANYCOLOR | IMREAD_ANYDEPTH``: gray stays gray, 16 bits stay 16 bits, alpha is dropped,
  palettes are expanded and the EXIF orientation is applied (``IMREAD_UNCHANGED`` would keep alpha
  but ignore the orientation);
- every failure is an :class:`ImageReadError` naming the file.

Images come back as float32 ``(H, W, C)`` in ``[0, 1]``, ``C`` = 1 or 3, channels in RGB order.
Writing goes through a temporary file and ``os.replace``, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np

from sagd_core.data.transforms import as_hwc

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_WRITE_SUFFIXES = {".png": (8, 16), ".tif": (8, 16), ".tiff": (8, 16), ".jpg": (8,), ".jpeg": (8,)}
# JPEG start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG), CC (DAC) are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageReadError(ValueError):
    """A file that cannot be read as an image; the message names the file and says why."""


def sniff_format(head: bytes) -> str | None:
    """``"PNG"``, ``"JPEG"`` or ``"TIFF"`` from the magic bytes, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def header_dimensions(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` parsed from the header; ValueError if it cannot be parsed."""
    fmt = sniff_format(data[:8])
    if fmt == "PNG":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ValueError("PNG without an IHDR header")
        width, height = struct.unpack(">II", data[16:24])
        return fmt, width, height
    if fmt == "JPEG":
        return (fmt, *_jpeg_dimensions(data))
    if fmt == "TIFF":
        return (fmt, *_tiff_dimensions(data))
    raise ValueError("not a PNG, JPEG or TIFF file (by its magic bytes)")


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("corrupt JPEG marker stream")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise ValueError("corrupt JPEG segment length")
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if height == 0 or width == 0:
                raise ValueError("JPEG frame without explicit dimensions")
            return width, height
        if marker in (0xDA, 0xD9):  # start of scan / end of image before any frame header
            break
        pos += 2 + length
    raise ValueError("JPEG without a frame header")


def _tiff_dimensions(data: bytes) -> tuple[int, int]:
    endian = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        raise ValueError("truncated TIFF header")
    (ifd,) = struct.unpack(endian + "I", data[4:8])
    if ifd + 2 > len(data):
        raise ValueError("TIFF directory offset beyond the end of the file")
    (n_entries,) = struct.unpack(endian + "H", data[ifd : ifd + 2])
    found: dict[int, int] = {}
    for k in range(n_entries):
        entry = data[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) < 12:
            raise ValueError("truncated TIFF directory")
        tag, typ = struct.unpack(endian + "HH", entry[:4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            fmt = endian + ("H" if typ == 3 else "I")
            size = struct.calcsize(fmt)
            found[tag] = struct.unpack(fmt, entry[8 : 8 + size])[0]
    if 256 not in found or 257 not in found:
        raise ValueError("TIFF without width and height tags")
    return found[256], found[257]


def decode_image(data: bytes, *, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into float32 ``(H, W, C)`` in ``[0, 1]`` (see the module docstring).

    ``name`` only labels error messages.
    """
    if not data:
        raise ImageReadError(f"{name}: the file is empty")
    try:
        fmt, width, height = header_dimensions(data)
    except (ValueError, struct.error) as exc:
        raise ImageReadError(f"{name}: {exc}") from exc
    if width < 1 or height < 1:
        raise ImageReadError(f"{name}: the {fmt} header says {width}×{height} pixels")
    if width * height > max_pixels:
        raise ImageReadError(
            f"{name}: {width}×{height} = {width * height} pixels exceeds the limit of {max_pixels}"
        )
    try:
        pixels = cv2.imdecode(
            np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
        )
    except cv2.error as exc:
        raise ImageReadError(f"{name}: OpenCV could not decode the {fmt} data") from exc
    if pixels is None:
        raise ImageReadError(f"{name}: OpenCV could not decode the {fmt} data")
    if pixels.shape[0] * pixels.shape[1] > max_pixels:  # the header lied (multi-page TIFF, …)
        raise ImageReadError(f"{name}: {pixels.shape[1]}×{pixels.shape[0]} exceeds {max_pixels}")
    return _to_unit_rgb(pixels, name)


def _to_unit_rgb(pixels: np.ndarray, name: str) -> np.ndarray:
    if pixels.dtype == np.uint8:
        unit = pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        unit = pixels.astype(np.float32) / 65535.0
    elif pixels.dtype in (np.float32, np.float64):
        if not np.isfinite(pixels).all():
            raise ImageReadError(f"{name}: the image holds non-finite values")
        unit = np.clip(pixels, 0.0, 1.0).astype(np.float32)
    else:
        raise ImageReadError(f"{name}: unsupported sample type {pixels.dtype}")
    img = as_hwc(unit)
    if img.shape[2] == 1:
        return img
    if img.shape[2] in (3, 4):
        return np.ascontiguousarray(img[:, :, 2::-1])  # BGR(A) -> RGB
    raise ImageReadError(f"{name}: unsupported channel count {img.shape[2]}")


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Read a PNG/JPEG/TIFF file as float32 ``(H, W, C)`` in ``[0, 1]``, C = 1 or 3."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > max_bytes:
            raise ImageReadError(f"{file}: {size} bytes exceeds the limit of {max_bytes}")
        data = file.read_bytes()
    except OSError as exc:
        raise ImageReadError(f"{file}: cannot read the file ({exc.strerror or exc})") from exc
    return decode_image(data, name=str(file), max_pixels=max_pixels)


def encode_image(image: np.ndarray, suffix: str = ".png", *, bit_depth: int = 8) -> bytes:
    """Encode float ``(H, W[, C])`` data in ``[0, 1]`` (clipped) as PNG/TIFF (8 or 16 bits) or
    JPEG (8 bits). C is 1 or 3 (RGB)."""
    depths = _WRITE_SUFFIXES.get(suffix.lower())
    if depths is None:
        raise ValueError(f"cannot write {suffix!r} files; use one of {sorted(_WRITE_SUFFIXES)}")
    if bit_depth not in depths:
        raise ValueError(f"{suffix} supports bit depths {depths}, not {bit_depth}")
    img = as_hwc(np.asarray(image, dtype=np.float64))
    if img.shape[2] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {img.shape[2]}")
    if not np.isfinite(img).all():
        raise ValueError("cannot encode non-finite values")
    peak, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    ints = np.rint(np.clip(img, 0.0, 1.0) * peak).astype(dtype)
    ints = ints[:, :, 0] if ints.shape[2] == 1 else np.ascontiguousarray(ints[:, :, ::-1])
    ok, buf = cv2.imencode(suffix.lower(), ints)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {suffix} image")
    return bytes(buf.tobytes())


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, bit_depth: int = 8) -> Path:
    """Write float ``(H, W[, C])`` data in ``[0, 1]`` to ``path`` atomically. The suffix picks the
    format: ``.png`` or ``.tif``/``.tiff`` (8 or 16 bits), ``.jpg``/``.jpeg`` (8 bits)."""
    file = Path(path)
    write_bytes_atomic(file, encode_image(image, file.suffix, bit_depth=bit_depth))
    return file


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "ImageReadError",
    "decode_image",
    "encode_image",
    "header_dimensions",
    "read_image",
    "sniff_format",
    "write_bytes_atomic",
    "write_image",
]
