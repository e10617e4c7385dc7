"""Reading image members out of an untrusted zip, in memory, with every size bounded.

Nothing is extracted to disk, so member names never become paths; still, names that would escape
(absolute, ``..``, NUL, drive letters) make the whole archive invalid rather than being skipped
silently. Directories, hidden files, macOS resource forks and members that are not images (by
magic bytes) are ignored. Declared sizes can lie, so reads are bounded by the remaining budget.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import NotRequired, TypedDict, Unpack

from service.jobs.images import ImageRejected, read_header, sniff_format

_READ_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,  # unsupported compression
    RuntimeError,  # encrypted member
    zlib.error,
)


class ZipRejected(ValueError):
    """An archive that is malformed, too big or unsafe; carries an HTTP status."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ZipMember:
    name: str  # the member's base name, for display only
    data: bytes


def _check_name(name: str) -> None:
    if "\x00" in name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ZipRejected(f"zip member name is not a relative path: {name[:80]!r}")
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise ZipRejected(f"zip member name escapes the archive: {name[:80]!r}")


def _ignored(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


class ZipBounds(TypedDict):
    """The bounds :func:`iter_zip_images` reads an archive within."""

    max_entries: int
    max_total_bytes: int
    max_member_bytes: int
    max_images: NotRequired[int | None]


def read_zip_images(data: bytes, **bounds: Unpack[ZipBounds]) -> list[ZipMember]:
    """The image members of a zip, sorted by name, within the given bounds."""
    return list(iter_zip_images(data, **bounds))


def iter_zip_images(
    data: bytes,
    *,
    max_entries: int,
    max_total_bytes: int,
    max_member_bytes: int,
    max_images: int | None = None,
) -> Iterator[ZipMember]:
    """The image members of a zip, sorted by name, one at a time: a caller that drops each member
    before taking the next holds one member's bytes, not the archive's expanded size (a few KB of
    deflated zeros can expand to the whole ``max_total_bytes``)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ZipRejected("not a readable zip archive") from exc
    if len(infos) > max_entries:
        raise ZipRejected(f"zip has {len(infos)} entries; the limit is {max_entries}")
    found = 0
    budget = max_total_bytes
    with archive:
        for info in sorted(infos, key=lambda i: i.filename):
            _check_name(info.filename)
            if info.is_dir() or _ignored(info.filename):
                continue
            if info.file_size > max_member_bytes:
                raise ZipRejected(
                    f"zip member {PurePosixPath(info.filename).name[:80]!r} is larger than "
                    f"{max_member_bytes} bytes",
                    status=413,
                )
            if info.file_size > budget:
                raise ZipRejected(
                    f"zip uncompresses to more than {max_total_bytes} bytes", status=413
                )
            limit = min(budget, max_member_bytes)
            name = PurePosixPath(info.filename).name[:80]
            try:
                with archive.open(info) as handle:
                    fmt = sniff_format(handle.read(16))
                    if fmt is None:
                        continue
                    # The header, streamed: junk behind an image signature (a deflated run of
                    # zeros, say) is refused before the member is inflated into memory.
                    handle.seek(0)
                    read_header(handle, fmt)
                with archive.open(info) as handle:  # from the start: one buffer, no concatenation
                    blob = handle.read(limit + 1)
            except ImageRejected as exc:
                raise ZipRejected(f"zip member {name!r}: {exc}") from exc
            except _READ_ERRORS as exc:
                raise ZipRejected("zip member could not be read (corrupt or unsupported)") from exc
            if len(blob) > limit:  # declared sizes can lie
                raise ZipRejected("zip member is larger than it declares or the limit", 413)
            budget -= len(blob)
            found += 1
            if max_images is not None and found > max_images:
                raise ZipRejected(f"zip holds more than {max_images} images")
            yield ZipMember(name=PurePosixPath(info.filename).name, data=blob)
            del blob
    if not found:
        raise ZipRejected("zip holds no PNG, JPEG, TIFF or WebP images")
