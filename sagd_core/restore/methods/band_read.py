"""``auto``'s learned route on noise-like bands without a model of the user's: the shipped
band reader (:mod:`sagd_core.models.band_reader`, MODEL_CARD.md in
``sagd_core/models/default_read``) reads the clean image in one call per channel, for any band,
and the per-image guard keeps its estimate per region only where it beats the classical tier
on recorrupted copies of the image (:func:`read_check`), else the classical
estimate is used.

The band level ``s_b`` is measured on the image per channel (the classical tier's estimate: the
band's power above the trusted spectrum's trend, averaged over the regions by their bins); the
declared broadband noise is the reader's white level. The guard's recorrupted copies carry
``1 + α²`` times all the noise (:func:`read_check`); with declared broadband noise the reader
also denoises the rest of the spectrum, and that part is checked as one more region.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sagd_core.restore.fourier import apply_gain
from sagd_core.restore.methods.chains import mask_on
from sagd_core.restore.methods.classical import plan_regions, run_classical
from sagd_core.restore.methods.learned_guard import (
    MARGIN,
    GuardCheck,
    apply_check,
    region_levels,
)
from sagd_core.restore.methods.recorrupted_risk import ALPHA, compare, recorrupt
from sagd_core.restore.progress import Progress
from sagd_core.restore.report import BandAction, MethodOutcome, region_specs
from sagd_core.restore.tiling import run_tiled
from sagd_core.spectral.grid import half_grid_multiplicity
from sagd_core.spectral.masks import band_mask

if TYPE_CHECKING:
    from sagd_core.models.band_reader import BandReader
    from sagd_core.restore.request import RestoreRequest

#: The reader's U-Net runs on tiles of at least this side (``restore``'s ``tile_size`` when
#: larger): a small network on few large tiles is faster than on many small ones, which overlap.
READ_TILE = 1024
#: Below this band level (model range) the band holds no measurable noise: nothing to read.
MIN_BAND_STD = 1e-3
HOW = "one-call read of the shipped band reader (any band, trained on clean TRAIN patches)"
CALIBRATION_NOTE = "the band reader needs no calibration (it takes the band's level as input)"


@lru_cache(maxsize=1)
def default_reader() -> BandReader:
    """The shipped reader, loaded once per process."""
    from sagd_core.models.band_reader import load_band_reader
    from sagd_core.models.default_read import DEFAULT_READER_DIR

    return load_band_reader(DEFAULT_READER_DIR)


def band_levels(image: np.ndarray, request: RestoreRequest) -> list[float]:
    """Per channel of ``image`` ``(C, H, W)``, the band's noise level ``s_b`` (std per bin):
    the regions' levels averaged by their bins."""
    h, w = image.shape[-2:]
    mult = half_grid_multiplicity(h, w)
    weights = [
        float(((band_mask(sub, h, w) > 0) * mult).sum()) for sub in region_specs(request.band)
    ]
    levels = np.asarray(region_levels(image, request), np.float64)  # (regions, C)
    mean_power = (levels * np.asarray(weights)[:, None]).sum(axis=0) / max(sum(weights), 1.0)
    return [math.sqrt(max(float(p), 0.0)) for p in mean_power]


def read(
    reader: BandReader,
    image: np.ndarray,
    request: RestoreRequest,
    levels: list[float],
    *,
    tile: int,
    overlap: int,
) -> np.ndarray:
    """The reader's estimate of ``image`` ``(C, H, W)`` (model range), channel by channel: the
    band projections on the whole image, the U-Net on tiles."""
    c, h, w = image.shape
    # A hard mask, as in training (a soft roll-off would not make a projection).
    mask = torch.tensor((band_mask(request.band, h, w, half=False) > 0).astype(np.float64))
    # The projections in float64 (the trusted bands come back exactly), the U-Net in float32.
    y = torch.from_numpy(np.asarray(image, np.float64))[:, None]
    band_std = torch.tensor(levels, dtype=torch.float32)
    white_std = torch.full((c,), float(request.input_noise_std), dtype=torch.float64)
    with torch.inference_mode():
        net_in, inside = reader.inputs(y, mask)
        code = reader.code(*reader.trained_levels(band_std, white_std.float()))
        out = run_tiled(
            lambda t: reader.unet.forward_embedded(t.float(), code).to(torch.float64),
            net_in,
            tile,
            overlap,
            channels=reader.config.unet.resolved_out_channels,
        )
        estimate = reader.combine(y, inside, out, mask, white_std)
    return estimate[:, 0].numpy()


def read_check(
    image: np.ndarray,
    request: RestoreRequest,
    learned_at: Callable[[np.ndarray, float], np.ndarray],
    *,
    band_is_noise: bool,
) -> tuple[GuardCheck, dict[str, Any] | None]:
    """The per-image guard of the read (:mod:`~sagd_core.restore.methods.recorrupted_risk`):
    the classical tier on the image, and both estimators' errors per region of the band on
    recorrupted copies carrying ``1 + α²`` times **all** the image's noise: the band's own when
    it is noise (``band_is_noise``; a subtracted sinusoid or stripe profile is not noise) and
    the declared white noise everywhere. ``learned_at(v, k)`` is the learned restoration of
    ``v`` for noise levels ``k`` times the image's (the copies: ``k = √(1 + α²)``); the
    classical tier is told the copies' white level. With declared white noise the bins outside
    the band, which the reader denoises too, are one more region, returned apart
    (``learned_error``, ``fallback_error``, ``difference_std``, ``chosen``); else None."""
    c, h, w = image.shape
    white = float(request.input_noise_std)
    subs = region_specs(request.band)
    regions = [(band_mask(sub, h, w) > 0).astype(np.float64) for sub in subs]
    if band_is_noise:
        powers = [[lv + white**2 for lv in per] for per in region_levels(image, request)]
    else:
        powers = [[white**2] * c for _ in subs]
    if white > 0:
        regions.append((band_mask(request.band, h, w) <= 0).astype(np.float64))
        powers.append([white**2] * c)
    pairs = recorrupt(image, regions, powers)
    scale = math.sqrt(1.0 + ALPHA**2)
    copy_request = request.model_copy(update={"input_noise_std": white * scale})

    def classical(v: np.ndarray) -> np.ndarray:
        return run_classical(v[None], copy_request, Progress(1, None)).samples[0]

    found = compare(pairs, lambda v: learned_at(v, scale), classical)
    fallback = run_classical(image[None], request, Progress(len(subs) + 1, None))
    check = GuardCheck(fallback=fallback, probe=None, how="recorrupted")
    n = len(subs)
    check.learned_errors, check.fallback_errors = found.errors[0][:n], found.errors[1][:n]
    check.spreads = found.spread[:n]
    if white == 0:
        return check, None
    learned, fallback_error, spread = found.errors[0][n], found.errors[1][n], found.spread[n]
    return check, {
        "learned_error": learned,
        "fallback_error": fallback_error,
        "difference_std": spread,
        "chosen": "learned" if learned - fallback_error < -MARGIN * spread else "classical",
    }


def subtracted(image: np.ndarray, request: RestoreRequest) -> np.ndarray:
    """``image`` ``(C, H, W)`` with the classical tier's parametric estimates (sinusoids, stripe
    profiles) subtracted and nothing denoised: the classical tier told of no broadband noise."""
    quiet = request.model_copy(update={"input_noise_std": 0.0})
    region_count = len(request.band.regions)
    return run_classical(image[None], quiet, Progress(region_count + 1, None)).samples[0]


def noise_band(request: RestoreRequest) -> bool:
    """Whether the classical tier treats every region of the request's band as noise."""
    return {plan.kind for plan in plan_regions(request)} == {"noise"}


def reader_input(image: np.ndarray, request: RestoreRequest) -> tuple[np.ndarray, list[float]]:
    """What the reader reads of ``image`` ``(C, H, W)``, and the band levels measured on it: the
    image itself on a noise band, else the image with the classical fits subtracted
    (:func:`subtracted`)."""
    start = image if noise_band(request) else subtracted(image, request)
    return start, band_levels(start, request)


def run_band_read(
    y: np.ndarray,
    request: RestoreRequest,
    progress: Progress,
    *,
    tile: int,
    overlap: int,
    reader: BandReader | None = None,
) -> MethodOutcome:
    """The guarded read of ``y`` ``(1, C, H, W)`` (model range; module docstring). On a band the
    classical tier fits (sinusoids, stripes; :func:`~sagd_core.restore.auto.reader_reason`
    sends it here only with declared broadband noise) the classical fit is subtracted first and
    the reader removes the broadband noise from what is left, outside the band (the band keeps
    the classical estimate). The classical tier where the band holds no measurable noise and
    none is declared. Raises ``ValueError`` where the reader does not apply
    (:func:`~sagd_core.restore.auto.reader_reason`)."""
    white = float(request.input_noise_std)
    kinds = {plan.kind for plan in plan_regions(request)}
    band_is_noise = kinds == {"noise"}
    fitted_and_noisy = "noise" not in kinds and white > 0  # auto.reader_reason's two cases
    if request.estimator != "mean" or not (band_is_noise or fitted_and_noisy):
        raise ValueError(
            "the band reader runs on noise-like bands, or with declared broadband noise"
        )
    reader = default_reader() if reader is None else reader
    image = np.asarray(y[0], np.float64)
    start, levels = reader_input(image, request)
    details: dict[str, Any] = {
        "band_read": {
            "model": "default band reader (sagd_core/models/default_read)",
            "band_std": levels,
            "white_std": white,
            "after": "the image as given"
            if band_is_noise
            else "the classical tier's sinusoid / stripe estimates subtracted",
        }
    }
    if max(levels) < MIN_BAND_STD and white == 0:
        outcome = run_classical(y, request, progress)
        outcome.details.update(details)
        outcome.warnings.append(
            f"no noise measured in the band (s_b {max(levels):.2g}): the band reader was not "
            "run; the classical tier's estimate is returned"
        )
        return outcome

    def learned_at(v: np.ndarray, k: float) -> np.ndarray:
        told = request.model_copy(update={"input_noise_std": white * k})
        if band_is_noise:
            return read(reader, v, told, [k * s for s in levels], tile=tile, overlap=overlap)
        rest, rest_levels = reader_input(v, told)
        return read(reader, rest, told, rest_levels, tile=tile, overlap=overlap)

    how = HOW if band_is_noise else HOW + ", after the classical tier's parametric subtraction"
    estimate = read(reader, start, request, levels, tile=tile, overlap=overlap)
    progress.advance()
    check, outside = read_check(image, request, learned_at, band_is_noise=band_is_noise)
    samples = torch.as_tensor(estimate[None], dtype=torch.float64)
    h, w = image.shape[-2:]
    band = (mask_on(request.band, h, w, samples.device) > 0).to(torch.float64)
    fallback = torch.as_tensor(check.fallback.samples[0], dtype=samples.dtype)
    regions: list[BandAction] | None
    if band_is_noise:
        samples, regions = apply_check(check, samples, request, how, True, CALIBRATION_NOTE, True)
    else:
        # The band's own corruption is the fit, not noise: the copies' targets still hold it, so
        # the errors there would be measured against the interference. The band keeps the
        # classical tier's estimate; the reader is checked (and used) outside it only.
        samples = samples + apply_gain(fallback - samples, band)
        regions = check.fallback.regions
        check.kept = [False] * len(region_specs(request.band))
    details["guard"] = check.describe(CALIBRATION_NOTE)
    if not band_is_noise:
        details["guard"]["band"] = "the classical tier's estimate (its fit is not noise)"
    warnings = check.warnings
    trusted = "returned exactly"
    if outside is not None:
        found = details["guard"]["outside"] = outside
        trusted = "denoised by the band reader"
        if found["chosen"] == "classical":
            samples = samples + apply_gain(fallback - samples, 1.0 - band)
            trusted = "denoised by the classical tier (the band reader lost there)"
            warnings.append(
                "outside the band the band reader's denoising lost to the classical tier on "
                f"recorrupted copies of this image (estimated error {found['learned_error']:.4g} "
                f"against {found['fallback_error']:.4g}): the classical estimate is used there"
            )
    progress.finish()
    return MethodOutcome(
        samples=samples.cpu().numpy(),
        band=BandAction("filled", how),
        trusted=trusted,
        details=details,
        warnings=warnings,
        regions=regions,
    )


__all__ = [
    "HOW",
    "band_levels",
    "default_reader",
    "noise_band",
    "read",
    "reader_input",
    "run_band_read",
    "subtracted",
]
