"""Fakes and builders for the worker tests (no torch, no sagd_core)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import numpy as np

from service.jobs.contracts import RestoreParams, TrainParams
from service.jobs.images import encode_png
from tests.harness import BAND
from worker.context import WorkerContext
from worker.engine import EngineResult


class FakeEngine:
    """Same methods as ``CoreEngine``; behaviour switched by attributes."""

    def __init__(self) -> None:
        self.steps = 3
        self.raise_at: int | None = None
        self.error: BaseException | None = None
        self.restores: list[RestoreParams] = []
        self.progress: list[Any] = []  # the progress callback of each restore
        self.loaded: list[Path] = []
        self.uncertainty = False

    def capabilities(self) -> dict[str, Any]:
        return {"methods": ["notch"], "analyze": True, "train": True}

    def warm_up(self, device: str) -> None:
        return None

    def select_device(self, setting: str) -> str:
        return "cpu"

    def load_model(self, directory: Path, device: str) -> Any:
        self.loaded.append(directory)
        return {"dir": directory.name}

    def restore(
        self,
        image: np.ndarray,
        params: RestoreParams,
        models: list[Any],
        *,
        device: str,
        progress: Any,
    ) -> EngineResult:
        self.restores.append(params)
        self.progress.append(progress)
        for step in range(1, self.steps + 1):
            progress(step, self.steps)
            if self.error is not None and step == self.raise_at:
                raise self.error
        return EngineResult(
            image=1.0 - image,
            report={"residual": 0.0, "models": [str(m) for m in models]},
            uncertainty=np.full(image.shape[:2], 0.1, np.float32) if self.uncertainty else None,
        )

    def train(
        self,
        params: TrainParams,
        out_dir: Path,
        *,
        images: list[np.ndarray] | None,
        device: str,
        progress: Any,
    ) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text("{}")
        for step in range(1, params.steps + 1):
            progress(step, params.steps, {"loss": 1.0 / step})
        return {
            "kind": params.model_kind,
            "band": params.band,
            "data_hash": "h",
            "scores": {"final_loss": 0.1, "images": len(images or [])},
        }

    def analyze(self, image: np.ndarray) -> dict[str, Any]:
        return {"proposed_band": BAND, "peaks": 1, "shape": list(image.shape)}


def new_restore_job(ctx: WorkerContext, *, callback: str | None = None, **params: Any) -> UUID:
    job_id = uuid4()
    values = {"band": BAND, "method": "notch", **params}
    ctx.storage.job_dir(job_id, create=True)
    pixels = np.linspace(0, 1, 8 * 10, dtype=np.float32).reshape(8, 10, 1)
    ctx.storage.write_bytes(ctx.storage.job_file(job_id, "input.png"), encode_png(pixels))
    ctx.jobs.create(
        job_id,
        kind="restore",
        owner="o",
        callback_url=callback,
        params=RestoreParams.model_validate(values).model_dump(mode="json"),
    )
    return job_id
