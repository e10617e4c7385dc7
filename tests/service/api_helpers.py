"""Small builders shared by the service, worker and integration tests."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
from PIL import Image

from service.jobs.queue import TaskMessage
from service.settings import Settings

BAND = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}
BAND_JSON = json.dumps(BAND)


def png_bytes(width: int = 32, height: int = 24, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        arr = rng.integers(0, 65535, (height, width), dtype=np.uint16)
        image = Image.fromarray(arr)
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4, "LA": 2}[mode]
        arr = rng.integers(0, 255, (height, width, channels), dtype=np.uint8)
        image = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class FakeQueue:
    """Records what the API queues (its messages go to a list no worker reads); ``fail`` makes
    building a message raise like a broken broker."""

    KEY = "sagd:test:queued"

    def __init__(self) -> None:
        self.sent: list[tuple[str, UUID]] = []
        self.revoked: list[UUID] = []
        self.chunks: list[tuple[str, list[UUID]]] = []
        self.workers = 1
        self.fail = False

    def message(self, task_name: str, job_id: UUID) -> TaskMessage:
        self._check()
        self.sent.append((task_name, job_id))
        return TaskMessage(self.KEY, json.dumps([task_name, str(job_id)]))

    def message_many(self, task_name: str, job_ids: Sequence[UUID]) -> TaskMessage:
        self._check()
        self.chunks.append((task_name, list(job_ids)))
        return TaskMessage(self.KEY, json.dumps([task_name, [str(j) for j in job_ids]]))

    def _check(self) -> None:
        if self.fail:
            import redis

            raise redis.ConnectionError("broker down")

    def revoke(self, job_id: UUID) -> None:
        self.revoked.append(job_id)

    def ping_workers(self, timeout: float) -> int:
        return self.workers


def restore_form(**overrides: Any) -> dict[str, str]:
    """Form fields of a notch restoration; ``name=None`` removes a field."""
    form = {"band_spec": BAND_JSON, "method": "notch"}
    for key, value in overrides.items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = str(value)
    return form


def make_settings(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "development",
        "storage_root": tmp_path / "storage",
        "redis_url": redis_url,
        "analyze_wait_s": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
