"""The learned methods' side of :func:`sagd_core.restore.restore`: models on a device, sampling
plans, and the ``ddnm`` / ``sagd`` runs on torch tensors (DESIGN.md §4.3, §4.4).

Kept apart from the dispatcher so that the notch and the classical tier never import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sagd_core.devices import DeviceError, resolve_device
from sagd_core.restore.errors import ModelMismatchError, RestoreError
from sagd_core.restore.gray_via_rgb import back_to_gray, takes_gray_via_rgb, to_rgb
from sagd_core.restore.methods.ddnm import run_ddnm
from sagd_core.restore.methods.sagd import run_sagd
from sagd_core.restore.models import LoadedModel, ModelSet
from sagd_core.restore.plans import resolve_plans
from sagd_core.restore.previews import PreviewCanvas, PreviewSink
from sagd_core.restore.progress import ProgressFn, StepWatchingProgress
from sagd_core.restore.report import MethodOutcome
from sagd_core.restore.request import RestoreRequest
from sagd_core.restore.tiling import tile_grid, tile_shape


@dataclass
class LearnedRun:
    """A learned method's outcome and what the report adds for it."""

    outcome: MethodOutcome
    device: str
    schedule: dict[str, Any] | None
    tiles: dict[str, Any] | None


def _resolve_device(device: str | torch.device) -> torch.device:
    try:
        return resolve_device(device)
    except DeviceError as exc:
        raise RestoreError(str(exc)) from exc


def check_models(models: ModelSet, channels: int) -> None:
    """Every model sits in the slot of its role and expects the image's channel count."""
    for role in models.roles():
        model: LoadedModel = getattr(models, role)
        if model.config.role != role:
            raise ModelMismatchError(
                f"the {role!r} slot holds a model trained with role {model.config.role!r}"
            )
        if model.channels != channels:
            raise ModelMismatchError(
                f"the {role} model expects {model.channels} channel(s) but the image has "
                f"{channels}; use a model trained on {'RGB' if channels == 3 else 'gray'} images"
            )


@torch.no_grad()
def run_learned(
    y: np.ndarray,
    request: RestoreRequest,
    models: ModelSet | None,
    *,
    device: str | torch.device,
    progress: ProgressFn | None,
    tile_size: int,
    tile_overlap: int,
    preview: PreviewSink | None = None,
) -> LearnedRun:
    """Run ``request.method`` (``ddnm`` or ``sagd``) on ``y`` ``(1, C, H, W)`` float64 (model
    range). Runs without autograd (the network's CPU inference path). ``preview``: previews of
    the whole image while sampling (:mod:`sagd_core.restore.previews`)."""
    c, h, w = y.shape[1:]
    dev = _resolve_device(device)
    models = (models or ModelSet()).to(dev)
    gray_via_rgb = takes_gray_via_rgb(models, c)
    if gray_via_rgb:
        y, c = to_rgb(y), 3
    check_models(models, c)
    plans, schedule_report = resolve_plans(models, request, tile_shape(h, w, tile_size))
    yt = torch.as_tensor(y, dtype=torch.float64, device=dev)
    tiles = tile_grid(h, w, tile_size, tile_overlap)
    run = run_ddnm if request.method == "ddnm" else run_sagd
    if preview is not None:
        canvas = PreviewCanvas(preview, yt, tile=tile_size, overlap=tile_overlap)
        progress = StepWatchingProgress(progress, canvas)
    outcome = run(
        yt, request, models, plans, progress=progress, tile=tile_size, overlap=tile_overlap
    )
    if gray_via_rgb:
        outcome = back_to_gray(outcome)
    return LearnedRun(
        outcome=outcome,
        device=str(dev),
        schedule=schedule_report,
        tiles={"count": len(tiles), "size": tile_size, "overlap": tile_overlap}
        if len(tiles) > 1
        else None,
    )


__all__ = ["LearnedRun", "check_models", "run_learned"]
