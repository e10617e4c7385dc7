"""The restoration entry point the worker calls (ARCHITECTURE.md "Contracts the worker calls").

``restore(image, request, models)`` returns the restored image and a JSON-able report. Methods
(SAGD.md §4):

- ``notch``: the classical baseline (hard, Gaussian or Butterworth roll-off), no model;
- ``ddnm``: null-space sampling with a full-support model trained on clean images (§4.3);
- ``sagd``: trusted bands returned exactly (or denoised by an omission model when input noise is
  declared, §4.2), the band filled by a band model when one is given (§4.3), else omitted.

Inputs are validated here (``RestoreError``, a ``ValueError``); whatever the ``progress``
callback raises propagates unchanged (cancellation). The request's schedule becomes one sampling
plan per model before any work (:func:`sagd_core.restore.plans.resolve_plans`), which the method
receives with the models.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from sagd_core.devices import DeviceError, resolve_device
from sagd_core.restore.errors import BandError, ModelMismatchError, RestoreError
from sagd_core.restore.inputs import prepare_image
from sagd_core.restore.methods.ddnm import run_ddnm
from sagd_core.restore.methods.notch import run_notch
from sagd_core.restore.methods.sagd import run_sagd
from sagd_core.restore.models import LoadedModel, ModelSet
from sagd_core.restore.plans import resolve_plans
from sagd_core.restore.progress import Progress, ProgressFn
from sagd_core.restore.report import MethodOutcome, build_report
from sagd_core.restore.request import RestoreRequest
from sagd_core.restore.result import RestoreResult
from sagd_core.restore.tiling import tile_grid, tile_shape
from sagd_core.spectral.masks import IllPosedBandError, check_spec_for_shape

logger = logging.getLogger(__name__)

DEFAULT_TILE = 256
DEFAULT_OVERLAP = 32


def _resolve_device(device: str | torch.device) -> torch.device:
    try:
        return resolve_device(device)
    except DeviceError as exc:
        raise RestoreError(str(exc)) from exc


def _check_models(models: ModelSet, channels: int) -> None:
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
def restore(
    image: np.ndarray,
    request: RestoreRequest,
    models: ModelSet | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
    tile_size: int = DEFAULT_TILE,
    tile_overlap: int = DEFAULT_OVERLAP,
) -> RestoreResult:
    """Restore ``image`` ((H, W) or (H, W, C), C = 1 or 3, floats in [0, 1] or uint8/uint16).

    Runs without autograd (the network's CPU inference path, :mod:`sagd_core.models.unet`).
    Raises :class:`RestoreError` (a ``ValueError``) for bad input, :class:`BandError` for a band
    spec that is ill-posed at this size, :class:`ModelMismatchError` for unusable models.
    """
    started = time.perf_counter()
    if not isinstance(request, RestoreRequest):
        raise RestoreError(f"request must be a RestoreRequest, got {type(request).__name__}")
    if not 16 <= tile_size <= 4096 or not 0 <= tile_overlap < tile_size // 2:
        raise RestoreError(f"bad tiling: tile_size={tile_size}, tile_overlap={tile_overlap}")
    prepared = prepare_image(image)
    c, h, w = prepared.channels, prepared.height, prepared.width
    try:
        mask_report = check_spec_for_shape(request.band, h, w)
    except IllPosedBandError as exc:
        raise BandError(f"band spec unusable for a {h}×{w} image: {exc}") from exc
    dev = _resolve_device(device)
    models = (models or ModelSet()).to(dev)
    _check_models(models, c)
    plans, schedule_report = resolve_plans(models, request, tile_shape(h, w, tile_size))
    y = torch.as_tensor(prepared.chw, dtype=torch.float64, device=dev)[None]
    tiles = tile_grid(h, w, tile_size, tile_overlap)
    prepared_s = time.perf_counter() - started

    t0 = time.perf_counter()
    outcome: MethodOutcome
    if request.method == "notch":
        outcome = run_notch(y, request, h, w, Progress(1, progress))
    elif request.method == "ddnm":
        outcome = run_ddnm(
            y, request, models, plans, progress=progress, tile=tile_size, overlap=tile_overlap
        )
    elif request.method == "sagd":
        outcome = run_sagd(
            y, request, models, plans, progress=progress, tile=tile_size, overlap=tile_overlap
        )
    else:  # pragma: no cover - pydantic rejects other methods
        raise RestoreError(f"unknown method {request.method!r}")
    method_s = time.perf_counter() - t0

    samples = outcome.samples.to(torch.float64)
    mean = samples.mean(dim=0)
    std = samples.std(dim=0, unbiased=True) if samples.shape[0] > 1 else None
    mean_np = mean.cpu().numpy()
    clipped = float(np.mean((mean_np < -1.0) | (mean_np > 1.0)))
    unclipped = prepared.to_caller(mean_np, clip=False)
    # The [-1, 1] → [0, 1] map halves spreads.
    uncertainty = prepared.layout(std.cpu().numpy() / 2.0) if std is not None else None
    timings = {"prepare_s": prepared_s, "method_s": method_s}
    report = build_report(
        method=request.method,
        spec=request.band,
        mask_report=mask_report,
        y=y[0],
        result=mean,
        outcome=outcome,
        request=request.model_dump(mode="json"),
        channels=c,
        device=str(dev),
        timings=timings,
        samples=int(samples.shape[0]),
        uncertainty_mean=float(std.mean()) / 2.0 if std is not None else None,
        clipped_fraction=clipped,
        tiles={"count": len(tiles), "size": tile_size, "overlap": tile_overlap}
        if len(tiles) > 1 and request.method != "notch"
        else None,  # the notch never tiles
    )
    if schedule_report is not None:
        report["schedule"] = schedule_report
    timings["total_s"] = time.perf_counter() - started
    logger.info("restored %dx%dx%d with %s in %.3f s", h, w, c, request.method, timings["total_s"])
    return RestoreResult(
        image=np.clip(unclipped, 0.0, 1.0).astype(np.float32),
        unclipped=unclipped,
        report=report,
        uncertainty=uncertainty,
    )


__all__ = ["DEFAULT_OVERLAP", "DEFAULT_TILE", "restore"]
