"""The restoration entry point the worker calls (ARCHITECTURE.md "Contracts the worker calls").

``restore(image, request, models)`` returns the restored image and a JSON-able report. Methods
(DESIGN.md §4):

- ``auto`` (the default): the classical tier, or a learned one-call read checked per region
  against it on recorrupted copies of the image: a given band model trained on images corrupted
  by noise of its band's shape, else the shipped band reader on noise-like bands and, with
  declared broadband noise, after the classical fits (:mod:`sagd_core.restore.auto`);
- ``notch``: the floor (hard, Gaussian or Butterworth roll-off), no model;
- ``classical``: each region handled by the estimator that fits its kind (a fitted sinusoid
  subtracted, a stripe profile subtracted, band-limited noise Wiener-filtered), no model
  (:mod:`sagd_core.restore.methods.classical`);
- ``ddnm``: null-space sampling with a full-support model trained on clean images (§4.3);
- ``sagd``: trusted bands returned exactly (or denoised by an omission model when input noise is
  declared, §4.2), the band filled by a band model when one is given (§4.3), else omitted.

Inputs are validated here (``RestoreError``, a ``ValueError``); whatever the ``progress``
callback raises propagates unchanged (cancellation). The notch and the classical tier run on
numpy and never import torch; the learned methods load it on first use
(:mod:`sagd_core.restore.learned`). The learned methods can also hand low-resolution previews of
the current estimate to a ``preview`` sink while they sample (:mod:`sagd_core.restore.previews`);
the others finish too fast to need one and ignore it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from sagd_core.restore.auto import choose_route
from sagd_core.restore.errors import BandError, RestoreError
from sagd_core.restore.inputs import prepare_image
from sagd_core.restore.methods.classical import run_classical
from sagd_core.restore.methods.notch import run_notch
from sagd_core.restore.progress import Progress, ProgressFn
from sagd_core.restore.report import MethodOutcome, build_report
from sagd_core.restore.request import MODEL_FREE_METHODS, RestoreRequest
from sagd_core.restore.result import RestoreResult
from sagd_core.spectral.masks import IllPosedBandError, check_spec_for_shape

if TYPE_CHECKING:
    import torch

    from sagd_core.restore.models import ModelSet
    from sagd_core.restore.previews import PreviewSink

logger = logging.getLogger(__name__)

DEFAULT_TILE = 256
DEFAULT_OVERLAP = 32


def _check_device(device: object) -> None:
    """Refuse an unknown or unavailable device name (imports torch: only for non-CPU names)."""
    from sagd_core.devices import DeviceError, resolve_device

    try:
        resolve_device(device)  # type: ignore[arg-type]
    except DeviceError as exc:
        raise RestoreError(str(exc)) from exc


def restore(
    image: np.ndarray,
    request: RestoreRequest,
    models: ModelSet | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
    preview: PreviewSink | None = None,
    tile_size: int = DEFAULT_TILE,
    tile_overlap: int = DEFAULT_OVERLAP,
) -> RestoreResult:
    """Restore ``image`` ((H, W) or (H, W, C), C = 1 or 3, floats in [0, 1] or uint8/uint16).

    Raises :class:`RestoreError` (a ``ValueError``) for bad input, :class:`BandError` for a band
    spec that is ill-posed at this size, :class:`ModelMismatchError` for unusable models.
    ``models``, ``device``, the tiling and ``preview`` (previews while sampling) only matter to
    the learned methods.
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
    if request.method in MODEL_FREE_METHODS and device not in ("cpu", "auto"):
        _check_device(device)  # they run on the CPU, but a bad name is still an error
    y = prepared.chw[None]
    extra: dict[str, Any] = {"device": "cpu", "schedule": None, "tiles": None}
    t0 = time.perf_counter()
    outcome: MethodOutcome
    route = choose_route(request, models, c) if request.method == "auto" else None
    if request.method == "notch":
        outcome = run_notch(y, request, Progress(1, progress))
    elif route is not None and (why := route.learned) is not None:
        from sagd_core.restore.learned import run_learned

        assert models is not None and models.band is not None  # choose_route checked both
        run = run_learned(
            y,
            request.model_copy(update={"method": "sagd"}),
            type(models)(band=models.band),  # the read needs the band model alone
            device=device,
            progress=progress,
            preview=preview,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
        )
        outcome = run.outcome
        extra = {"device": run.device, "schedule": run.schedule, "tiles": run.tiles}
        kept = [r.get("chosen") for r in outcome.details.get("guard", {}).get("regions", [])]
        outcome.details["auto"] = {
            "chosen": "sagd" if "learned" in kept or not kept else "classical",
            "why": f"a band model that reads the clean image in one call ({why}); per region "
            "its estimate is kept only where it beats the classical tier on recorrupted copies "
            "of this image (details.guard), else the classical estimate is used",
        }
    elif route is not None and (why := route.reader) is not None:
        from sagd_core.restore.methods.band_read import READ_TILE, run_band_read

        tile = max(tile_size, READ_TILE)  # a small network: few large tiles are faster
        outcome = run_band_read(y, request, Progress(2, progress), tile=tile, overlap=tile_overlap)
        guard = outcome.details.get("guard", {})
        kept = [r.get("chosen") for r in guard.get("regions", [])]
        kept.append(guard.get("outside", {}).get("chosen"))
        outcome.details["auto"] = {
            "chosen": "band reader" if "learned" in kept else "classical",
            "why": f"{why}; per region its estimate is kept only where it beats the classical "
            "tier on recorrupted copies of this image (details.guard), else the classical "
            "estimate is used",
        }
        if route.not_learned is not None:
            outcome.warnings.append(
                f"method 'auto' did not use the given model(s): {route.not_learned}"
            )
    elif request.method in ("classical", "auto"):
        outcome = run_classical(y, request, Progress(len(request.band.regions) + 1, progress))
        if request.method == "auto":
            unused = route.not_learned if route is not None else None
            if unused is not None:
                outcome.warnings.append(
                    f"method 'auto' did not use the given model(s): {unused}; the classical "
                    "tier was run (ask for method 'sagd' or 'ddnm' to use them anyway)"
                )
            outcome.details["auto"] = {
                "chosen": "classical",
                "why": (f"the given model(s) do not qualify ({unused}); " if unused else "")
                + "the band is one the classical tier fits (sinusoids, stripes) without declared "
                "broadband noise, or mixes such regions with noise, or the request asks for "
                "samples: no learned read applies; the classical tier falls back to the notch "
                "per region by itself",
            }
    elif request.method in ("ddnm", "sagd"):
        from sagd_core.restore.learned import run_learned

        run = run_learned(
            y,
            request,
            models,
            device=device,
            progress=progress,
            preview=preview,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
        )
        outcome = run.outcome
        extra = {"device": run.device, "schedule": run.schedule, "tiles": run.tiles}
    else:  # pragma: no cover - pydantic rejects other methods
        raise RestoreError(f"unknown method {request.method!r}")
    prepared_s = t0 - started
    method_s = time.perf_counter() - t0

    samples = np.asarray(outcome.samples, dtype=np.float64)
    mean = samples.mean(axis=0)
    std = samples.std(axis=0, ddof=1) if samples.shape[0] > 1 else None
    clipped = float(np.mean((mean < -1.0) | (mean > 1.0)))
    unclipped = prepared.to_caller(mean, clip=False)
    # The [-1, 1] → [0, 1] map halves spreads.
    uncertainty = prepared.layout(std / 2.0) if std is not None else None
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
        device=extra["device"],
        timings=timings,
        samples=int(samples.shape[0]),
        uncertainty_mean=float(std.mean()) / 2.0 if std is not None else None,
        clipped_fraction=clipped,
        tiles=extra["tiles"],
    )
    if extra["schedule"] is not None:
        report["schedule"] = extra["schedule"]
    timings["total_s"] = time.perf_counter() - started
    logger.info("restored %dx%dx%d with %s in %.3f s", h, w, c, request.method, timings["total_s"])
    return RestoreResult(
        image=np.clip(unclipped, 0.0, 1.0).astype(np.float32),
        unclipped=unclipped,
        report=report,
        uncertainty=uncertainty,
    )


__all__ = ["DEFAULT_OVERLAP", "DEFAULT_TILE", "restore"]
