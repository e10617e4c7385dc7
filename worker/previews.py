"""A running learned restoration's previews: ``preview.png`` in its job folder, throttled.

The library hands over the current estimate of the whole image (``sagd_core.restore.previews``)
whenever :meth:`PreviewWriter.due` says so: at the first sampler step, then at most once every
:data:`PREVIEW_INTERVAL_S` seconds, at most :data:`MAX_PREVIEWS` per job. Each is written as an
8-bit PNG (longest side ≤ 128 px) with an atomic rename, so the API (``GET /v1/jobs/{id}/preview``,
and the ``preview`` events of its stream) reads the previous preview or the whole new one. A
preview is advice: one that cannot be written is logged and the previews stop; the job goes on.

The previews travel to :class:`worker.engine.CoreEngine` on the progress callback
(:class:`PreviewingProgress`, its ``preview`` attribute), so engines that know nothing of
previews (the tests' fakes) take the callback as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from service.jobs.images import encode_png
from service.jobs.storage import PREVIEW_FILE, Storage

logger = logging.getLogger(__name__)

#: Seconds between two previews of one job, at least.
PREVIEW_INTERVAL_S = 1.0
#: Previews written per job, at most.
MAX_PREVIEWS = 20


class PreviewWriter:
    """Writes previews with ``write(png_bytes)`` when due (see the module docstring)."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        *,
        interval_s: float = PREVIEW_INTERVAL_S,
        max_count: int = MAX_PREVIEWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self.interval_s = interval_s
        self.max_count = max_count
        self._clock = clock
        self.count = 0
        self._last: float | None = None

    def due(self) -> bool:
        if self.count >= self.max_count:
            return False
        return self._last is None or self._clock() - self._last >= self.interval_s

    def __call__(self, image: np.ndarray) -> None:
        """Write ``image`` (float (h, w, C) in [0, 1]) as an 8-bit PNG, if a preview is due."""
        if not self.due():
            return
        self._last = self._clock()
        self.count += 1
        try:
            self._write(encode_png(image, 8))
        except (OSError, ValueError) as exc:
            logger.warning("preview not written (%s); no more previews for this job", exc)
            self.count = self.max_count


def job_preview_writer(storage: Storage, folder: Path) -> PreviewWriter:
    """A writer of ``preview.png`` in the job folder ``folder`` (as ``Storage.job_dir`` gave
    it), not fsynced: a preview lost in a crash does not matter."""
    return PreviewWriter(
        lambda png: storage.write_job_files(folder, {PREVIEW_FILE: png}, durable=False)
    )


class PreviewingProgress:
    """The job's ``progress(step, total)`` callback, carrying its preview writer as
    ``preview`` for the engines that take previews."""

    def __init__(self, progress: Callable[[int, int], None], preview: PreviewWriter) -> None:
        self.progress = progress
        self.preview = preview

    def __call__(self, step: int, total: int) -> None:
        self.progress(step, total)


__all__ = [
    "MAX_PREVIEWS",
    "PREVIEW_INTERVAL_S",
    "PreviewWriter",
    "PreviewingProgress",
    "job_preview_writer",
]
