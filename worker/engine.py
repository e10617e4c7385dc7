"""The only module that calls ``sagd_core`` (docs/ARCHITECTURE.md, "Contracts the worker calls").

:class:`CoreEngine` adapts the worker's job parameters (``service.jobs.contracts``) to the library's
entry points: ``sagd_core.restore.restore`` / ``load_model`` / ``analyze`` and
``sagd_core.training.train``. Library imports are lazy, so a worker whose ``sagd_core`` lacks a
feature still runs the others and reports what it can do (:meth:`CoreEngine.capabilities`).
Tasks are unit-tested with a fake engine that has the same methods (:class:`Engine`).
A restore's ``progress`` callback may carry a ``preview`` sink (``worker.previews``): the real
engine hands it to the library, which sends it previews while a learned method samples.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from service.jobs.contracts import RestoreParams, TrainParams

logger = logging.getLogger(__name__)
# Fill calibration after a band-model training job (held-out test images, chain steps, samples).
CALIBRATION = {"count": 32, "steps": 25, "samples": 2}

StepCallback = Callable[[int, int], None]
TrainCallback = Callable[[int, int, dict[str, float]], None]


class EngineError(ValueError):
    """A job the library refused or cannot do; the message is shown to the client."""


@dataclass(frozen=True)
class EngineResult:
    image: np.ndarray  # float32 (H, W, C) in [0, 1]
    report: dict[str, Any]
    uncertainty: np.ndarray | None = None  # float32 (H, W[, C]) >= 0


class Engine(Protocol):
    def capabilities(self) -> dict[str, Any]: ...

    def warm_up(self, device: str) -> None: ...

    def select_device(self, setting: str) -> str: ...

    def load_model(self, directory: Path, device: str) -> Any: ...

    def restore(
        self,
        image: np.ndarray,
        params: RestoreParams,
        models: list[Any],
        *,
        device: str,
        progress: StepCallback,
    ) -> EngineResult: ...

    def train(
        self,
        params: TrainParams,
        out_dir: Path,
        *,
        images: list[np.ndarray] | None,
        device: str,
        progress: TrainCallback,
    ) -> dict[str, Any]: ...

    def analyze(self, image: np.ndarray) -> dict[str, Any]: ...


def jsonable(value: Any) -> Any:
    """Reports may hold numpy scalars/arrays, dataclasses or pydantic models: make plain JSON."""
    kind = type(value)  # plain values first (most of a report), by exact type: the same results
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {str(k): jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@contextlib.contextmanager
def _single_thread(enabled: bool) -> Iterator[None]:
    """One intra-op thread for FFT-only work (the notch): a few FFTs of one image are too small
    for a thread team, whose wake-ups cost more than they give, and on a CPU shared with the API
    or other workers a second thread waiting for its core made a 256² notch 13-75× slower
    (4 ms with one thread; measured with ``benchmarks/bench_service.py``'s bare loop)."""
    if not enabled:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class CoreEngine:
    """The real engine: ``sagd_core`` on CPU or CUDA."""

    def capabilities(self) -> dict[str, Any]:
        """What this worker runs (published to Redis for the API; torch-free to compute)."""
        from sagd_core.restore.request import METHODS

        return {"methods": list(METHODS), "analyze": True, "train": True}

    def warm_up(self, device: str) -> None:
        """One tiny notch restoration on ``device``, so the first real job does not pay for
        library imports, FFT plans and allocator warm-up (run in each worker child after fork)."""
        try:
            image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
            band = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}
            params = RestoreParams.model_validate({"band": band, "method": "notch"})
            # CoreEngine's own restore, not an override's (a test engine slows restorations).
            CoreEngine.restore(
                self, image[..., None], params, [], device=device, progress=lambda s, t: None
            )
        except Exception as exc:  # a warm-up failure must not stop the worker
            logger.warning("engine warm-up failed: %s", exc)

    def select_device(self, setting: str) -> str:
        """``auto``: CUDA when available (call after fork, never in the parent)."""
        from sagd_core.devices import resolve_device

        return str(resolve_device(setting))

    def load_model(self, directory: Path, device: str) -> Any:
        from sagd_core.checkpoint import CheckpointError
        from sagd_core.restore import load_model

        try:
            return load_model(directory, device=device)
        except CheckpointError as exc:
            raise EngineError(
                f"model checkpoint {directory.parent.name}/{directory.name} "
                f"could not be loaded: {exc}"
            ) from exc

    def restore(
        self,
        image: np.ndarray,
        params: RestoreParams,
        models: list[Any],
        *,
        device: str,
        progress: StepCallback,
    ) -> EngineResult:
        from sagd_core.restore import ModelSet, RestoreError, restore

        request = params.request()  # the job's params are the library's request plus service data
        preview = getattr(progress, "preview", None)  # worker.previews.PreviewingProgress

        source = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
        try:
            model_set = ModelSet.from_models(models) if models else None
            with _single_thread(params.is_numpy_only and device == "cpu"):
                result = restore(
                    source, request, model_set, device=device, progress=progress, preview=preview
                )
        except RestoreError as exc:  # bad input for this image or these models: tell the client
            raise EngineError(str(exc)) from exc
        restored = np.asarray(result.image, dtype=np.float32)
        if restored.ndim == 2:
            restored = restored[..., None]
        uncertainty = getattr(result, "uncertainty", None)
        return EngineResult(
            image=restored,
            report=jsonable(result.report),
            uncertainty=None if uncertainty is None else np.asarray(uncertainty, np.float32),
        )

    def train(
        self,
        params: TrainParams,
        out_dir: Path,
        *,
        images: list[np.ndarray] | None,
        device: str,
        progress: TrainCallback,
    ) -> dict[str, Any]:
        """Train one model version into ``out_dir``; returns its registry metadata."""
        from sagd_core.data.builtin import BUILTIN_DATASETS
        from sagd_core.models import PRESET_NAMES, unet_preset
        from sagd_core.spectral import parse_band_spec
        from sagd_core.training import DataConfig, TrainConfig, TrainProgress, train
        from sagd_core.training.dataset import prepare_uploaded
        from sagd_core.training.recipes import recipe_noise

        if params.dataset is not None and params.dataset not in BUILTIN_DATASETS:
            raise EngineError(f"unknown built-in dataset {params.dataset!r}")  # never a path
        if params.unet not in PRESET_NAMES:
            raise EngineError(f"unknown U-Net preset {params.unet!r}; valid: {PRESET_NAMES}")
        try:
            band = parse_band_spec(params.band)
            noise, _, project_trusted = recipe_noise(params.model_kind, band)
            arrays, channels = (
                prepare_uploaded(images, params.image_size) if images is not None else (None, 1)
            )
            data = DataConfig(
                source=params.dataset or "uploaded",
                image_size=params.image_size,
                channels=channels,
                corruption=params.synthetic_corruption,
                corruption_seed=params.seed,
                declared_corruption=params.declared_corruption,
            )
            config = TrainConfig(
                model=unet_preset(params.unet, channels),
                noise=noise,
                band=band,
                role=params.model_kind,
                project_trusted=project_trusted,
                data=data,
                steps=params.steps,
                batch_size=params.batch_size,
                seed=params.seed,
                checkpoint_every=max(params.steps // 4, 1),
                device=device,
            )
        except ValueError as exc:
            raise EngineError(f"invalid training request: {exc}") from exc

        def on_step(p: TrainProgress) -> None:
            progress(p.step, p.total, {"loss": p.loss_avg, "images_per_s": p.images_per_s})

        try:
            result = train(config, out_dir, progress=on_step, images=arrays)
        except (ValueError, FloatingPointError) as exc:  # the library's "bad input" errors
            raise EngineError(f"training failed: {exc}") from exc
        meta_file = out_dir / "meta.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        calibration = self._calibrate_band_fill(params, out_dir, band, channels, device, progress)
        return {
            "kind": params.model_kind,
            "channels": channels,
            "band": band.model_dump(mode="json"),
            "noise": config.noise.model_dump(mode="json"),
            "schedule": config.schedule.model_dump(mode="json"),
            "data_hash": meta.get("dataset_hash"),
            "scores": {
                "final_loss": jsonable(result.final_loss),
                "steps": result.steps,
                "train_seconds": round(result.seconds, 3),
                **calibration,
            },
        }

    def _calibrate_band_fill(
        self,
        params: TrainParams,
        out_dir: Path,
        band: Any,
        channels: int,
        device: str,
        progress: TrainCallback,
    ) -> dict[str, Any]:
        """A band model trained on a built-in dataset with a synthetic corruption gets its fill
        calibrated (gain, corruption-to-noise ratio, read level) on that dataset's *test* split,
        corrupted the same way, as ``sagd calibrate --split test`` does; the restore then uses
        it. Uploaded datasets have no held-out images here: their models stay uncalibrated
        (``sagd calibrate`` with held-out images does it). A failed calibration leaves the model
        usable, uncalibrated, and is logged."""
        if params.model_kind != "band" or params.dataset is None or not params.synthetic_corruption:
            return {}
        from sagd_core.calibration.fill import calibrate_fill_gain, corrupted_builtin
        from sagd_core.restore.models import load_model

        settings = CALIBRATION
        progress(params.steps, params.steps, {"calibrating_fill": 1.0})
        try:
            images = corrupted_builtin(
                params.dataset,
                params.synthetic_corruption,
                image_size=params.image_size,
                channels=channels,
                count=settings["count"],
            )
            calib = calibrate_fill_gain(
                load_model(out_dir, device=device),
                images,
                band,
                steps=settings["steps"],
                samples=settings["samples"],
                directory=out_dir,
                device=device,
            )
        except (ValueError, RuntimeError) as exc:
            logger.warning("fill calibration of %s failed; left uncalibrated: %s", out_dir, exc)
            return {"fill_calibration": None}
        return {
            "fill_gain": jsonable(calib["gain"]),
            "fill_read_alpha_bar": jsonable(calib.get("read_alpha_bar", 0.1)),
            "fill_calibration_images": int(calib["images"]),
        }

    def analyze(self, image: np.ndarray) -> dict[str, Any]:
        from sagd_core.analysis.analyze import analyze_image
        from sagd_core.restore.errors import RestoreError

        source = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
        try:
            analysis = analyze_image(source)
        except RestoreError as exc:
            raise EngineError(str(exc)) from exc
        result = jsonable(analysis.to_dict())
        json.dumps(result)  # fail here, not in Redis, if the library returned something odd
        return result if isinstance(result, dict) else {"analysis": result}
