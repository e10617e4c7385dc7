"""A trained model fits its own N-step schedule on demand (DESIGN.md §5), cached in-process.

What the fit needs from a model: its training-data spectrum λ (``meta["spectrum"]``, saved by the
training loop; older checkpoints re-estimate it from ``config.data``), its forward noise ``w`` and
its training schedule. In SAGD-whitened coordinates the process is standard, so the sampler's
closed forms apply to ``λ / w²`` with a unit prior; the loss is measured in pixel space by weighting
each frequency's W2 term with ``w²`` (KL is the same in both coordinates, so it is unweighted).
Frequencies with ``w = 0`` (omitted bands) carry no noise and are left out. When the spectrum
records the data's mean image (``Spectrum.mean_power``, saved since the field exists), the cost
of the mean the zero-mean prior leaves ungenerated is counted too (:func:`.mean_error_gain`);
without it a fit on real data starts sampling at ᾱ_N ≈ 0.3, far inside the data.

The fit is bounded to the model's training range of ᾱ and starts from the model's own N-step plan
(leading spacing), so it is never worse than that plan in the Gaussian model.

Module not imported by ``sagd_core.schedule_design`` itself: it depends on
:mod:`sagd_core.training`, which imports the package (import it as
``from sagd_core.planning.for_model import fitted_plan_for_model``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import numpy as np

from sagd_core.schedule_design.fitted import FittedSchedule, ScheduleFitError
from sagd_core.schedule_design.losses import LOSSES, LossName
from sagd_core.schedule_design.optimize import optimize_schedule, schedule_loss
from sagd_core.schedule_design.plans import plan_for_fitted
from sagd_core.schedule_design.spectrum import Spectrum, SpectrumError, estimate_spectrum
from sagd_core.schedule_design.transfer import SAMPLERS, SamplerName
from sagd_core.spectral.weights import NoiseSpec, noise_weights

if TYPE_CHECKING:
    from sagd_core.schedules import SamplingPlan, Schedule
    from sagd_core.training import TrainedModel
    from sagd_core.training.config import DataConfig

logger = logging.getLogger(__name__)

_MAX_CACHED = 256
_lock = threading.Lock()
_spectra: OrderedDict[str, Spectrum] = OrderedDict()
_fits: OrderedDict[tuple[Any, ...], FittedSchedule] = OrderedDict()


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _MAX_CACHED:
            cache.popitem(last=False)


def _lookup(cache: OrderedDict[Any, Any], key: Any) -> Any:
    with _lock:
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
        return value


def clear_cache() -> None:
    """Forget every cached spectrum and fit (tests, or after replacing a model directory)."""
    with _lock:
        _spectra.clear()
        _fits.clear()


def model_key(model: TrainedModel) -> str:
    """Identity of what a fit depends on: the training config and the data (hash or spectrum)."""
    meta = model.meta
    ident: dict[str, Any] = {"config": model.config.model_dump(mode="json")}
    if meta.get("dataset_hash"):
        ident["data"] = meta["dataset_hash"]
    elif meta.get("spectrum") is not None:
        ident["spectrum"] = meta["spectrum"]
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def spectrum_from_data(data: DataConfig) -> Spectrum:
    """Estimate λ from the images a data config names (the training images, corrupted if set)."""
    from sagd_core.training.dataset import load_training_images  # heavy; only when needed

    images = load_training_images(data)
    logger.info("estimating the data spectrum from %d images of %s", len(images), data.source)
    return estimate_spectrum(images)


def model_spectrum(model: TrainedModel) -> Spectrum:
    """The model's training-data spectrum: ``meta["spectrum"]`` or, if absent, re-estimated."""
    key = model_key(model)
    cached = _lookup(_spectra, key)
    if cached is not None:
        return cached
    raw = model.meta.get("spectrum")
    if raw is not None:
        try:
            spectrum = Spectrum.from_json(raw) if isinstance(raw, str) else Spectrum.from_dict(raw)
        except SpectrumError as exc:
            raise ScheduleFitError(f"the model's saved spectrum is unusable: {exc}") from exc
    else:
        logger.info("model has no saved spectrum; estimating it from its data config")
        spectrum = spectrum_from_data(model.config.data)
    _remember(_spectra, key, spectrum)
    return spectrum


@dataclass(frozen=True, eq=False)
class FitProblem:
    """What the closed forms see for data ``spectrum`` under forward noise ``w`` at one size:
    the whitened spectrum ``λ/w²`` and the per-frequency loss weights (``w²`` for pixel-space W2,
    none for KL)."""

    whitened: Spectrum
    weights: np.ndarray | None
    noise_weights: np.ndarray

    @classmethod
    def build(
        cls, spectrum: Spectrum, noise: NoiseSpec, height: int, width: int, loss: str
    ) -> FitProblem:
        if loss not in LOSSES:
            raise ScheduleFitError(f"unknown loss {loss!r}; use one of {LOSSES}")
        sized = spectrum.resized(height, width)
        w = noise_weights(noise, height, width)
        return cls(sized.whiten(w), w**2 if loss == "w2" else None, w)

    def loss(
        self, alpha_bars: np.ndarray, sampler: str, loss: str, final_alpha_bar: float = 1.0
    ) -> float:
        """W2² (pixel space) or KL of a decreasing grid."""
        return schedule_loss(
            alpha_bars,
            self.whitened,
            sampler=sampler,  # type: ignore[arg-type]
            loss=loss,  # type: ignore[arg-type]
            final_alpha_bar=final_alpha_bar,
            weights=self.weights,
        )


def fit_for_noise(
    spectrum: Spectrum,
    noise: NoiseSpec,
    schedule: Schedule,
    num_steps: int,
    *,
    sampler: SamplerName = "ddim",
    loss: LossName = "w2",
    height: int | None = None,
    width: int | None = None,
) -> FittedSchedule:
    """Fit an N-step grid for data ``spectrum`` under forward noise ``noise`` (uncached).

    The spectrum is resized to ``height × width`` if given (:meth:`Spectrum.resized`), whitened by
    ``w²`` and fitted with pixel-space W2 (weights ``w²``) or KL, within ``schedule``'s ᾱ range,
    starting from ``schedule.plan(num_steps)``; ``loss_init`` of the result is that plan's loss.
    """
    if sampler not in SAMPLERS:
        raise ScheduleFitError(f"unknown sampler {sampler!r}; use one of {SAMPLERS}")
    h = spectrum.height if height is None else height
    w = spectrum.width if width is None else width
    problem = FitProblem.build(spectrum, noise, h, w, loss)
    try:
        init = schedule.plan(num_steps).alpha_bars[::-1].copy()
    except ValueError as exc:
        raise ScheduleFitError(str(exc)) from exc
    range_ = (float(schedule.alpha_bars[-1]), float(schedule.alpha_bars[0]))
    fitted = optimize_schedule(
        problem.whitened,
        num_steps,
        sampler=sampler,
        loss=loss,
        init=init,
        T=schedule.num_train_timesteps,
        weights=problem.weights,
        alpha_bar_range=range_,
    )
    context = {
        "image_size": [h, w],
        "noise": noise.model_dump(mode="json"),
        "schedule": schedule.to_dict(),
        "loss_space": "pixel" if loss == "w2" else "whitened (= pixel for KL)",
        "init": f"{schedule.name} schedule.plan({num_steps}), leading spacing",
    }
    return replace(fitted, context=context)


class FitOptions(TypedDict, total=False):
    """The keyword options of :func:`fitted_schedule_for_model`: those of :func:`fit_for_noise`
    (sampler ddim, loss w2 by default), the size defaulting to the training size."""

    sampler: SamplerName
    loss: LossName
    height: int | None
    width: int | None


def fitted_schedule_for_model(
    model: TrainedModel, num_steps: int, **options: Unpack[FitOptions]
) -> FittedSchedule:
    """The model's fitted N-step schedule (cached by model identity, N, sampler, loss, size)."""
    spectrum = model_spectrum(model)
    sampler, loss = options.get("sampler", "ddim"), options.get("loss", "w2")
    height, width = options.get("height"), options.get("width")
    h = spectrum.height if height is None else int(height)
    w = spectrum.width if width is None else int(width)
    key = (model_key(model), int(num_steps), sampler, loss, h, w)
    cached = _lookup(_fits, key)
    if cached is not None:
        return cached
    fitted = fit_for_noise(
        spectrum,
        model.config.noise,
        model.schedule,
        num_steps,
        sampler=sampler,
        loss=loss,
        height=h,
        width=w,
    )
    logger.info(
        "fitted %d-step %s/%s schedule for the model: loss %.4g -> %.4g",
        num_steps,
        sampler,
        loss,
        fitted.loss_init,
        fitted.loss_final,
    )
    _remember(_fits, key, fitted)
    return fitted


def fitted_plan_for_model(
    model: TrainedModel, num_steps: int, **options: Unpack[FitOptions]
) -> SamplingPlan:
    """A sampling plan of ``num_steps`` levels fitted to the model's data and noise.

    Use it in place of ``model.schedule.plan(num_steps)``::

        plan = fitted_plan_for_model(model, 10, sampler="ddim")
        x = sample_ddim(model.eps_predictor(op), plan, op, shape)

    ``height``/``width`` default to the training size. The fit runs once per (model, N, sampler,
    loss, size) per process (about a second or less on a CPU); later calls are cached.
    """
    return plan_for_fitted(fitted_schedule_for_model(model, num_steps, **options), model.schedule)
