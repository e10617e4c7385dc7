"""The worker side of a restoration's previews: the throttled writer (the first at once, then at
most one per interval, at most a number per job, a failed write stops them and not the job), the
file it writes (an 8-bit PNG in the job folder, replaced atomically), and ``restore_body``
handing a writer to the engine for the learned methods only."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import cv2
import numpy as np
import pytest

from service.jobs.storage import PREVIEW_FILE, Storage
from tests.worker.worker_helpers import FakeEngine, new_restore_job
from worker.context import WorkerContext
from worker.engine import EngineResult
from worker.jobs import execute, restore_body
from worker.previews import PreviewingProgress, PreviewWriter, job_preview_writer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def grey(h: int = 6, w: int = 9, value: float = 0.5) -> np.ndarray:
    return np.full((h, w, 1), value, np.float32)


def test_the_first_preview_at_once_then_one_per_interval_and_a_cap() -> None:
    clock, written = Clock(), []
    writer = PreviewWriter(written.append, interval_s=1.0, max_count=3, clock=clock)
    assert writer.due()
    writer(grey())
    assert len(written) == 1 and not writer.due()
    clock.now += 0.5
    writer(grey())  # too soon: dropped
    assert len(written) == 1
    clock.now += 0.5
    assert writer.due()
    writer(grey())
    for _ in range(5):
        clock.now += 2.0
        writer(grey())
    assert len(written) == 3 and writer.count == 3 and not writer.due()


def test_a_preview_is_an_8_bit_png_of_the_image() -> None:
    written: list[bytes] = []
    image = np.linspace(0, 1, 5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3)
    PreviewWriter(written.append)(image)
    decoded = cv2.imdecode(np.frombuffer(written[0], np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint8 and decoded.shape == (5, 7, 3)
    np.testing.assert_array_equal(decoded[..., ::-1], np.rint(image * 255).astype(np.uint8))


def test_a_failed_write_stops_the_previews_not_the_job() -> None:
    calls = 0

    def full_disk(data: bytes) -> None:
        nonlocal calls
        calls += 1
        raise OSError(28, "No space left on device")

    writer = PreviewWriter(full_disk, interval_s=0.0)
    writer(grey())  # logged, not raised
    writer(grey())
    assert calls == 1 and not writer.due()


def test_the_job_writer_replaces_preview_png_in_the_job_folder(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    folder = storage.job_dir(UUID("6f1b7c2e-0000-4000-8000-000000000001"), create=True)
    writer = job_preview_writer(storage, folder)
    writer.interval_s = 0.0
    writer(grey(value=0.0))
    writer(grey(value=1.0))
    assert sorted(p.name for p in folder.iterdir()) == [PREVIEW_FILE]  # no temporary left
    decoded = cv2.imdecode(np.frombuffer((folder / PREVIEW_FILE).read_bytes(), np.uint8), -1)
    assert decoded.shape == (6, 9) and (decoded == 255).all()


class PreviewingEngine(FakeEngine):
    """A fake engine that sends one preview per step when its callback carries a writer."""

    def __init__(self) -> None:
        super().__init__()
        self.carried: list[bool] = []

    def restore(
        self, image: np.ndarray, params: Any, models: Any, *, device: str, progress: Any
    ) -> EngineResult:
        preview = getattr(progress, "preview", None)
        self.carried.append(preview is not None)
        if preview is not None:
            preview(np.full((4, 5, 1), 0.25, np.float32))
        return super().restore(image, params, models, device=device, progress=progress)


@pytest.fixture
def engine() -> PreviewingEngine:  # the worker context's engine (tests/worker/conftest.py)
    return PreviewingEngine()


@pytest.mark.parametrize(("method", "previews"), [("notch", False), ("sagd", True)])
def test_restore_body_gives_the_learned_methods_a_preview_writer(
    wctx: WorkerContext, engine: PreviewingEngine, method: str, previews: bool, tmp_path: Path
) -> None:
    models: list[dict[str, str]] = []
    if method == "sagd":
        staged = tmp_path / "staged"
        staged.mkdir()
        wctx.registry.add_version("demo", staged, {"kind": "omission"})
        models = [{"name": "demo"}]
    job_id = new_restore_job(wctx, method=method, models=models)
    assert execute(wctx, str(job_id), restore_body) == "succeeded"
    assert engine.carried == [previews]
    preview = wctx.storage.job_file(job_id, PREVIEW_FILE)
    assert preview.is_file() == previews
    job = wctx.jobs.get(job_id) or {}
    assert job["step"] == job["total"] == str(engine.steps)  # progress still reported through it


def test_previewing_progress_is_the_progress_callback() -> None:
    seen: list[tuple[int, int]] = []
    writer = PreviewWriter(lambda data: None)
    callback = PreviewingProgress(lambda s, t: seen.append((s, t)), writer)
    callback(2, 5)
    assert seen == [(2, 5)] and callback.preview is writer
