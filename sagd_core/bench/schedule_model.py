"""Part (b) of ``sagd bench schedule``: sample quality of a trained model versus N per schedule.

For each schedule (the model's own ``linear`` plan, the ``cosine`` grid, the ``optimized`` grid
fitted to the model's data spectrum and noise by :mod:`.for_model`) and each N, the model draws the
same number of images from the same seeds (common random numbers: with DDIM the same priors), and
the images are compared with held-out data of the model's own data config (its ``test`` split,
corrupted like its training data when the config says so — the distribution the model learned):

- ``fd``: Fréchet distance in the digits classifier's feature space
  (:func:`sagd_core.metrics.frechet_distance`); only for digits-like single-channel data;
- ``fd_clean``: the same against the *clean* held-out images; informational only: for a model
  trained on corrupted images it *grows* as the samples get closer to what the model learned;
- ``spec_db``: RMS distance of radially averaged power spectra in dB
  (:func:`sagd_core.metrics.spectrum_distance`);
- ``gauss_w2``: W2² between Gaussian fits with diagonal Fourier covariance (per-frequency variance
  and mean image, from the samples), the quantity the fit minimises for Gaussian data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sagd_core.planning.for_model import FitProblem, fitted_plan_for_model, model_spectrum
from sagd_core.samplers import sample_ddim, sample_ddpm
from sagd_core.schedule_design.plans import heuristic_plan
from sagd_core.schedule_design.spectrum import Spectrum, estimate_spectrum
from sagd_core.schedules import SamplingPlan
from sagd_core.training import TrainedModel
from sagd_core.training.dataset import load_clean_images, load_training_images

logger = logging.getLogger(__name__)

SCHEDULES = ("linear", "cosine", "optimized")
METRICS = ("fd", "fd_clean", "spec_db", "gauss_w2")
#: Metrics where lower means closer to the model's own data distribution.
QUALITY_METRICS = ("fd", "spec_db", "gauss_w2")


@dataclass(frozen=True, eq=False)
class Reference:
    """Held-out images of a model's data config (and their clean version) with their spectrum."""

    images: np.ndarray
    clean: np.ndarray
    spectrum: Spectrum
    mean: np.ndarray


def reference_for(model: TrainedModel, count: int | None = None) -> Reference:
    data = model.config.data.model_copy(update={"split": "test", "count": count})
    images = load_training_images(data)
    clean = load_clean_images(data).astype(np.float32)
    return Reference(
        images, clean, estimate_spectrum(images), images.astype(np.float64).mean(axis=0)
    )


def plan_for(model: TrainedModel, schedule: str, num_steps: int, sampler: str) -> SamplingPlan:
    """The plan of a named schedule for ``model`` (its own schedule's plan for its own name)."""
    if schedule == "optimized":
        return fitted_plan_for_model(model, num_steps, sampler=sampler)  # type: ignore[arg-type]
    if schedule == model.schedule.name:
        return model.schedule.plan(num_steps)
    return heuristic_plan(schedule, num_steps, model.schedule)


def generate(
    model: TrainedModel,
    plan: SamplingPlan,
    sampler: str,
    num: int,
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> np.ndarray:
    """``(num, C, H, W)`` samples at the training size, *not* clipped to [-1, 1] (corrupted
    training data leave that range, and clipping would bias every metric); batch ``k`` uses
    seed ``seed + k`` whatever the plan, so plans are compared on the same priors."""
    h, w = (int(v) for v in model.meta.get("image_size", [model.config.data.image_size] * 2))
    op = model.noise_op(h, w)
    eps_model = model.eps_predictor(op)
    out = []
    for k, start in enumerate(range(0, num, batch_size)):
        gen = torch.Generator(device=model.device).manual_seed(seed + k)
        shape = (min(batch_size, num - start), model.channels, h, w)
        if sampler == "ddim":
            x = sample_ddim(eps_model, plan, op, shape, generator=gen)
        else:
            x = sample_ddpm(eps_model, plan, op, shape, generator=gen)
        out.append(x.cpu().numpy())
    return np.concatenate(out)


def gaussian_w2(samples: np.ndarray, spectrum: Spectrum, mean: np.ndarray) -> float:
    """W2² between Gaussian fits with diagonal Fourier covariance: per-frequency variances
    (``Σ (√v − √λ)²`` over the full grid) plus the squared distance of the mean images."""
    gen = estimate_spectrum(samples)
    if gen.lam.shape != spectrum.lam.shape or mean.shape != samples.shape[1:]:
        raise ValueError("samples and reference differ in size")
    var_term = np.sum(spectrum.multiplicity * (np.sqrt(gen.lam) - np.sqrt(spectrum.lam)) ** 2)
    mean_term = np.sum((samples.astype(np.float64).mean(axis=0) - mean) ** 2)
    return float(var_term + mean_term)


def quality(samples: np.ndarray, ref: Reference) -> dict[str, float]:
    """The metrics of the module docstring for one sample set."""
    from sagd_core.metrics import frechet_distance, spectrum_distance

    out = {
        "spec_db": spectrum_distance(samples, ref.images),
        "gauss_w2": gaussian_w2(samples, ref.spectrum, ref.mean),
    }
    size = samples.shape[-1]
    if samples.shape[1] == 1 and samples.shape[-2] == size:
        out["fd"] = frechet_distance(samples, ref.images, image_size=size)
        out["fd_clean"] = frechet_distance(samples, ref.clean, image_size=size)
    return out


@dataclass
class ModelResult:
    """``metrics[schedule][N]`` for one model and sampler, plus the reference floor."""

    name: str
    sampler: str
    metrics: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def best_heuristic(self, metric: str, n: int) -> tuple[str, float]:
        options = {
            s: self.metrics[s][n][metric]
            for s in ("linear", "cosine")
            if n in self.metrics.get(s, {})
        }
        name = min(options, key=lambda k: options[k])
        return name, options[name]

    def steps_to_match(self, metric: str, reference_steps: int) -> int | None:
        """Smallest N at which the optimized schedule is at least as good (≤) as the best
        heuristic at ``reference_steps``."""
        _, target = self.best_heuristic(metric, reference_steps)
        hits = [n for n, m in self.metrics.get("optimized", {}).items() if m[metric] <= target]
        return min(hits) if hits else None


def evaluate_model(
    model: TrainedModel,
    name: str,
    steps: dict[str, Sequence[int]],
    *,
    sampler: str = "ddim",
    num: int = 512,
    seed: int = 0,
    batch_size: int = 256,
    reference: Reference | None = None,
    progress: Callable[[str], None] | None = None,
) -> ModelResult:
    """Metrics for every schedule in ``steps`` (schedule name → list of N)."""
    started = time.perf_counter()
    ref = reference or reference_for(model)
    result = ModelResult(name, sampler)
    # Noise floor: a second held-out-sized draw is not available, so the floor is the training
    # images (same distribution, different images) against the held-out ones.
    train_like = load_training_images(model.config.data)[: len(ref.images)]
    result.floor = quality(train_like, ref)
    for schedule, ns in steps.items():
        result.metrics[schedule] = {}
        for n in sorted(set(ns)):
            plan = plan_for(model, schedule, n, sampler)
            samples = generate(model, plan, sampler, num, seed=seed, batch_size=batch_size)
            result.metrics[schedule][n] = quality(samples, ref)
            if progress is not None:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics[schedule][n].items())
                progress(f"{name} {sampler} {schedule} N={n}: {shown}")
    result.seconds = time.perf_counter() - started
    return result


def predicted_losses(
    model: TrainedModel, steps: dict[str, Sequence[int]], sampler: str
) -> dict[str, dict[int, dict[str, float]]]:
    """What the Gaussian model predicts (pixel W2² of the closed form on the model's data
    spectrum, mean included) for the same schedules, as ``{schedule: {N: {"predicted": …}}}``."""
    spectrum = model_spectrum(model)
    problem = FitProblem.build(spectrum, model.config.noise, spectrum.height, spectrum.width, "w2")
    out: dict[str, dict[int, dict[str, float]]] = {}
    for schedule, ns in steps.items():
        out[schedule] = {}
        for n in sorted(set(ns)):
            grid = plan_for(model, schedule, n, sampler).alpha_bars[::-1]
            out[schedule][n] = {"predicted": problem.loss(grid, sampler, "w2")}
    return out


def markdown_table(result: ModelResult, metric: str) -> str:
    """``| N | linear | cosine | optimized |`` for one metric (best per row in bold)."""
    schedules = [s for s in SCHEDULES if s in result.metrics]
    all_n = sorted({n for s in schedules for n in result.metrics[s]})
    lines = ["| N | " + " | ".join(schedules) + " |", "|---|" + "---|" * len(schedules)]
    for n in all_n:
        row = {s: result.metrics[s][n][metric] for s in schedules if n in result.metrics[s]}
        best = min(row.values())
        cells = []
        for s in schedules:
            if s not in row:
                cells.append("")
                continue
            text = f"{row[s]:.4g}"
            cells.append(f"**{text}**" if row[s] == best else text)
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
