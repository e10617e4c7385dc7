"""Restoration and generation metrics that need no downloads (DESIGN.md §6).

- :mod:`quality`: PSNR and SSIM overall, in-band and out-of-band; band energies.
- :mod:`spectra`: radially averaged power spectra and their distance.
- :mod:`frechet`: Fréchet distance in the feature space of a small digits classifier trained here.
"""

from sagd_core.metrics.frechet import (
    DigitsFeatures,
    digits_feature_extractor,
    frechet_distance,
    gaussian_frechet,
)
from sagd_core.metrics.quality import (
    BandMetrics,
    band_energy,
    band_energy_ratio,
    band_metrics,
    band_split,
    mse_split,
    psnr,
    ssim,
)
from sagd_core.metrics.spectra import radial_power, spectrum_distance

__all__ = [
    "BandMetrics",
    "DigitsFeatures",
    "band_energy",
    "band_energy_ratio",
    "band_metrics",
    "band_split",
    "digits_feature_extractor",
    "frechet_distance",
    "gaussian_frechet",
    "mse_split",
    "psnr",
    "radial_power",
    "spectrum_distance",
    "ssim",
]
