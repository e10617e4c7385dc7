"""Part (a) of ``sagd bench schedule``: heuristic versus fitted grids on Gaussian data, in closed
form (DESIGN.md §5; the closed forms are checked against the real samplers in the test suite).

A case is a data spectrum, a forward noise and an image size. For each sampler and N the table
holds the pixel-space W2² between the sampler's output Gaussian and the data for the linear plan
(``Schedule.plan(N)``, leading spacing), the cosine grid and the fitted grid (fitted for that
sampler, inside the linear schedule's ᾱ range, started from the linear plan).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sagd_core.planning.for_model import FitProblem, fit_for_noise
from sagd_core.schedule_design.fitted import FittedSchedule
from sagd_core.schedule_design.heuristics import cosine_alpha_bars
from sagd_core.schedule_design.spectrum import Spectrum, gaussian_spectrum_power_law
from sagd_core.schedule_design.transfer import output_variance
from sagd_core.schedules import Schedule, make_schedule
from sagd_core.spectral.weights import NoiseSpec

logger = logging.getLogger(__name__)

SCHEDULE_NAMES = ("linear", "cosine", "optimized")
SAMPLER_NAMES = ("ddim", "ddpm")


@dataclass(frozen=True, eq=False)
class GaussianCase:
    name: str
    spectrum: Spectrum
    noise: NoiseSpec


@dataclass
class CaseResult:
    """``losses[sampler][schedule][N]`` (pixel W2²) and the fitted grids ``fits[sampler][N]``."""

    case: GaussianCase
    steps: list[int]
    losses: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    fits: dict[str, dict[int, FittedSchedule]] = field(default_factory=dict)

    def best_heuristic(self, sampler: str, n: int) -> tuple[str, float]:
        options = {s: self.losses[sampler][s][n] for s in ("linear", "cosine")}
        name = min(options, key=lambda k: options[k])
        return name, options[name]

    def steps_to_match(self, sampler: str, reference_steps: int) -> int | None:
        """Smallest N whose fitted loss is ≤ the best heuristic's loss at ``reference_steps``."""
        _, target = self.best_heuristic(sampler, reference_steps)
        hits = [n for n in self.steps if self.losses[sampler]["optimized"][n] <= target]
        return min(hits) if hits else None


def power_law_case(noise: NoiseSpec, size: int = 32) -> GaussianCase:
    """``λ ∝ r⁻²`` on ``size × size`` (``r ≥ 1/size``), unscaled, zero mean (DESIGN.md §5)."""
    label = "white" if noise.is_white else noise.describe()
    return GaussianCase(
        f"power law r^-2 {size}x{size}, {label}",
        gaussian_spectrum_power_law(size, size, -2.0),
        noise,
    )


def data_case(name: str, spectrum: Spectrum, noise: NoiseSpec) -> GaussianCase:
    label = "white" if noise.is_white else noise.describe()
    return GaussianCase(f"{name} {spectrum.height}x{spectrum.width}, {label}", spectrum, noise)


def run_case(
    case: GaussianCase,
    steps: Sequence[int],
    *,
    samplers: Sequence[str] = SAMPLER_NAMES,
    schedule: Schedule | None = None,
) -> CaseResult:
    """Losses of the linear plan, the cosine grid and the fitted grid for every sampler and N."""
    schedule = schedule or make_schedule("linear")
    spec = case.spectrum
    problem = FitProblem.build(spec, case.noise, spec.height, spec.width, "w2")
    result = CaseResult(case, sorted(set(steps)))
    for sampler in samplers:
        losses: dict[str, dict[int, float]] = {name: {} for name in SCHEDULE_NAMES}
        result.fits[sampler] = {}
        for n in result.steps:
            linear = schedule.plan(n).alpha_bars[::-1]
            losses["linear"][n] = problem.loss(linear, sampler, "w2")
            losses["cosine"][n] = problem.loss(cosine_alpha_bars(n), sampler, "w2")
            fitted = fit_for_noise(
                spec,
                case.noise,
                schedule,
                n,
                sampler=sampler,  # type: ignore[arg-type]
                loss="w2",
            )
            losses["optimized"][n] = fitted.loss_final
            result.fits[sampler][n] = fitted
        result.losses[sampler] = losses
        logger.info("case %s, %s done", case.name, sampler)
    return result


def markdown_table(result: CaseResult, steps: Sequence[int]) -> str:
    """``| N | DDIM linear | … | DDPM optimized |`` rows for the requested N."""
    samplers = list(result.losses)
    head = ["N"] + [f"{s.upper()} {name}" for s in samplers for name in SCHEDULE_NAMES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in steps:
        cells = [str(n)]
        for s in samplers:
            row = {name: result.losses[s][name][n] for name in SCHEDULE_NAMES}
            best = min(row.values())
            for name in SCHEDULE_NAMES:
                text = f"{row[name]:.4g}"
                cells.append(f"**{text}**" if row[name] == best else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def radial_ratio(
    result: CaseResult, sampler: str, grid: np.ndarray, n_bins: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """Radial profile of the generated-to-data variance ratio ``v/λ`` (pixel space) of a grid:
    the squared magnitude of the sampler's transfer relative to the data, per frequency."""
    spec = result.case.spectrum
    problem = FitProblem.build(spec, result.case.noise, spec.height, spec.width, "w2")
    lam_w = problem.whitened.lam
    v = output_variance(grid, lam_w, sampler=sampler)  # type: ignore[arg-type]
    ratio = np.divide(v, lam_w, out=np.full_like(v, np.nan), where=lam_w > 0)
    ratio_spec = Spectrum(np.nan_to_num(ratio, nan=0.0), spec.height, spec.width)
    centres, profile = ratio_spec.radial_profile(n_bins)
    return centres, profile.mean(axis=0)
