"""Spectral masks, weights and the shaped-noise operator (DESIGN.md §1–3)."""

from sagd_core.spectral.bands import (
    Annulus,
    BandSpec,
    BandSpecError,
    Box,
    Notch,
    Wedge,
    parse_band_spec,
)
from sagd_core.spectral.grid import R_MAX, frequency_axes, half_grid_multiplicity, radius_grid
from sagd_core.spectral.masks import (
    IllPosedBandError,
    MaskReport,
    band_mask,
    check_spec_for_shape,
    mask_report,
)
from sagd_core.spectral.weights import BpmBand, NoiseSpec, RadialProfile, noise_weights

__all__ = [
    "R_MAX",
    "Annulus",
    "BandSpec",
    "BandSpecError",
    "Box",
    "BpmBand",
    "IllPosedBandError",
    "MaskReport",
    "NoiseSpec",
    "Notch",
    "RadialProfile",
    "Wedge",
    "band_mask",
    "check_spec_for_shape",
    "frequency_axes",
    "half_grid_multiplicity",
    "mask_report",
    "noise_weights",
    "parse_band_spec",
    "radius_grid",
]
