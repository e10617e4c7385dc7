"""Spectral schedule design (SAGD.md §5): data spectrum, closed-form sampler transfer, fitting.

Typical use::

    spectrum = estimate_spectrum(images).whiten(noise_weights(spec, H, W))
    fitted = optimize_schedule(spectrum, num_steps=10, sampler="ddim", loss="w2")
    fitted.alpha_bars  # decreasing ᾱ_1 … ᾱ_N, lands on fitted.final_alpha_bar
"""

from sagd_core.schedule_design.losses import (
    LossName,
    SpectralLossError,
    kl_divergence,
    spectral_loss,
    w2_squared,
)
from sagd_core.schedule_design.optimize import (
    FittedSchedule,
    ScheduleFitError,
    cosine_alpha_bars,
    cosine_train_alpha_bars,
    leading_timesteps,
    linear_alpha_bars,
    linear_train_alpha_bars,
    optimize_schedule,
    schedule_loss,
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
    output_variance,
    validate_alpha_bars,
    ve_ddim_output_variance,
    wiener_eps_gain,
    wiener_x0_gain,
)

__all__ = [
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
    "kl_divergence",
    "leading_timesteps",
    "linear_alpha_bars",
    "linear_train_alpha_bars",
    "optimize_schedule",
    "output_variance",
    "sample_gaussian_images",
    "schedule_loss",
    "spectral_loss",
    "validate_alpha_bars",
    "ve_ddim_output_variance",
    "w2_squared",
    "wiener_eps_gain",
    "wiener_x0_gain",
]
