"""Spectral schedule design (DESIGN.md §5): data spectrum, closed-form sampler transfer, fitting.

Typical use::

    spectrum = estimate_spectrum(images).whiten(noise_weights(spec, H, W))
    fitted = optimize_schedule(spectrum, num_steps=10, sampler="ddim", loss="w2")
    fitted.alpha_bars  # decreasing ᾱ_1 … ᾱ_N, lands on fitted.final_alpha_bar
    plan = plan_for_fitted(fitted, schedule)  # what sample_ddim/sample_ddpm take
    plan = load_fitted_plan("schedule.json", model.schedule)  # a saved fit

A trained model fits its own schedule with
:func:`sagd_core.planning.for_model.fitted_plan_for_model` (not re-exported here: that
module imports :mod:`sagd_core.training`, which imports this package).
"""

from sagd_core.schedule_design.fitted import FittedSchedule, ScheduleFitError
from sagd_core.schedule_design.heuristics import (
    HEURISTICS,
    cosine_alpha_bars,
    cosine_train_alpha_bars,
    leading_timesteps,
    linear_alpha_bars,
    linear_train_alpha_bars,
)
from sagd_core.schedule_design.losses import (
    LossName,
    SpectralLossError,
    kl_divergence,
    spectral_loss,
    w2_squared,
)
from sagd_core.schedule_design.optimize import optimize_schedule, schedule_loss
from sagd_core.schedule_design.plans import (
    grid_from_plan,
    heuristic_plan,
    load_fitted_plan,
    load_fitted_schedule,
    plan_for_fitted,
    plan_from_grid,
)
from sagd_core.schedule_design.spectrum import (
    Spectrum,
    SpectrumError,
    estimate_spectrum,
    gaussian_spectrum_power_law,
    sample_gaussian_images,
)
from sagd_core.schedule_design.transfer import (
    SamplerName,
    ScheduleGridError,
    ddim_gains,
    ddim_output_variance,
    ddim_transfer,
    ddpm_coefficients,
    ddpm_output_variance,
    mean_error_gain,
    output_variance,
    validate_alpha_bars,
    ve_ddim_output_variance,
    wiener_eps_gain,
    wiener_x0_gain,
)

__all__ = [
    "HEURISTICS",
    "FittedSchedule",
    "LossName",
    "SamplerName",
    "ScheduleFitError",
    "ScheduleGridError",
    "SpectralLossError",
    "Spectrum",
    "SpectrumError",
    "cosine_alpha_bars",
    "cosine_train_alpha_bars",
    "ddim_gains",
    "ddim_output_variance",
    "ddim_transfer",
    "ddpm_coefficients",
    "ddpm_output_variance",
    "estimate_spectrum",
    "gaussian_spectrum_power_law",
    "grid_from_plan",
    "heuristic_plan",
    "kl_divergence",
    "leading_timesteps",
    "linear_alpha_bars",
    "linear_train_alpha_bars",
    "load_fitted_plan",
    "load_fitted_schedule",
    "mean_error_gain",
    "optimize_schedule",
    "output_variance",
    "plan_for_fitted",
    "plan_from_grid",
    "sample_gaussian_images",
    "schedule_loss",
    "spectral_loss",
    "validate_alpha_bars",
    "ve_ddim_output_variance",
    "w2_squared",
    "wiener_eps_gain",
    "wiener_x0_gain",
]
