"""Corruption-shaped forward noise on Gaussian images, in closed form (DESIGN.md §4.3, last point).

Band-limited Gaussian noise of pixel std ``s`` (flat in an annulus) corrupts images from a known
Gaussian prior with a ``1/f^α`` spectrum (:func:`~sagd_core.restore.gaussian_oracle.
power_law_spectrum`, pixel std 0.5; α = 2 puts about 21% of the energy in [0.15, 0.30) at 32×32,
α = 3.5 about 3%, natural photos about 1.3%, DESIGN.md §4.3): ``stationary``, or ``modulated`` by
a fixed smooth envelope so that the frequencies are correlated and the band can be predicted from
its surroundings. For each ``s`` the table holds the exact MSE, in dB (``10 log10 MSE``, lower is
better), of

- ``input``: the corrupted image itself;
- ``notch``: the band set to zero (its prior mean);
- ``fill``: the band model's fill, ``E[x | trusted bands]`` (the in-band observation discarded);
- ``posterior``: ``E[x | y]``, the whole observation (the Wiener filter);
- ``one_call``: what the one-call read of :mod:`sagd_core.restore.methods.corruption_shaped`
  returns with the exact corrupted-data denoiser standing in for the network, at its default
  read time (its linear map is measured by running it on the pixel basis).

Everything is a dense linear map, so the figures are exact, not Monte Carlo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from sagd_core.restore.corrupted_oracle import corrupted_oracle_model
from sagd_core.restore.gaussian_oracle import power_law_spectrum
from sagd_core.restore.methods.corruption_shaped import one_call_clean_mean
from sagd_core.spectral.bands import BandSpec, parse_band_spec
from sagd_core.spectral.gaussian_posterior import (
    GaussianImagePrior,
    circulant_covariance,
    linear_estimator_mse,
    mse_db,
    notch_matrix,
    out_of_band_fill_matrix,
    posterior_mean_matrix,
    trusted_basis,
)
from sagd_core.spectral.grid import half_grid_multiplicity
from sagd_core.spectral.masks import band_mask
from sagd_core.spectral.weights import NoiseSpec, noise_weights

PriorKind = Literal["stationary", "modulated"]
ESTIMATORS = ("input", "notch", "fill", "posterior", "one_call")
DEFAULT_BAND: dict[str, object] = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}
DEFAULT_STDS = (0.05, 0.1, 0.2, 0.5, 1.0)
#: Pixel variance of the stationary field: std 0.5, typical of images scaled to [−1, 1].
PIXEL_VARIANCE = 0.25


@dataclass(frozen=True)
class CorruptionShapedRow:
    prior: PriorKind
    band_energy: float  # share of the clean image's energy in the band
    corruption_std: float
    mse_db: dict[str, float]
    read_t: int

    def gain_db(self, better: str, worse: str) -> float:
        """How much lower ``better``'s MSE is than ``worse``'s, in dB."""
        return self.mse_db[worse] - self.mse_db[better]


def envelope(height: int, width: int, depth: float = 0.8) -> np.ndarray:
    """``1 + depth · sin(2πx/W) cos(2πy/H)``: the fixed modulation of the ``modulated`` prior."""
    yy, xx = np.mgrid[0:height, 0:width]
    return 1.0 + depth * np.sin(2 * np.pi * xx / width) * np.cos(2 * np.pi * yy / height)


def make_prior(kind: PriorKind, size: int, exponent: float = 2.0) -> GaussianImagePrior:
    """The ``kind`` prior on ``size × size`` with spectrum ``∝ 1/(r² + r0²)^(exponent/2)``,
    scaled to the pixel variance :data:`PIXEL_VARIANCE` (before the envelope)."""
    power = power_law_spectrum(size, size, exponent=exponent)
    power *= (
        PIXEL_VARIANCE * size * size / float((power * half_grid_multiplicity(size, size)).sum())
    )
    if kind == "stationary":
        return GaussianImagePrior.stationary(power, size, size)
    return GaussianImagePrior.modulated(power, envelope(size, size), size, size)


def band_energy_fraction(prior: GaussianImagePrior, band: BandSpec) -> float:
    """The share of the prior's expected energy that lies in the band."""
    h, w = prior.height, prior.width
    in_band = circulant_covariance(band_mask(band, h, w), h, w)
    return float(np.trace(in_band @ prior.cov) / np.trace(prior.cov))


def one_call_matrix(
    prior: GaussianImagePrior, noise: NoiseSpec, band: BandSpec, corruption_std: float
) -> tuple[np.ndarray, int]:
    """The linear map of the one-call read (exact corrupted-data denoiser), and its time."""
    h, w = prior.height, prior.width
    model = corrupted_oracle_model(prior.cov, noise, corruption_std, (h, w), band=band)
    basis = torch.eye(prior.size, dtype=torch.float64).reshape(prior.size, 1, h, w)
    out, info = one_call_clean_mean(model, basis, corruption_std, dtype=torch.float64)
    return out.reshape(prior.size, prior.size).numpy().T, int(info["t"])


def corruption_shaped_rows(
    *,
    size: int = 32,
    band: dict[str, object] | None = None,
    stds: Sequence[float] = DEFAULT_STDS,
    priors: Sequence[PriorKind] = ("stationary", "modulated"),
    exponent: float = 2.0,
) -> list[CorruptionShapedRow]:
    """One row per (prior, corruption std); see the module docstring."""
    spec = parse_band_spec(band or DEFAULT_BAND)
    noise = NoiseSpec(kind="band", band=spec)
    w2 = noise_weights(noise, size, size) ** 2
    noise_cov = circulant_covariance(w2, size, size)
    basis = trusted_basis(1.0 - band_mask(spec, size, size), size, size)
    rows = []
    for kind in priors:
        prior = make_prior(kind, size, exponent)
        energy = band_energy_fraction(prior, spec)
        fill = out_of_band_fill_matrix(prior.cov, basis)
        for s in stds:
            corruption_cov = s**2 * noise_cov
            one_call, t = one_call_matrix(prior, noise, spec, s)
            maps = {
                "input": np.eye(prior.size),
                "notch": notch_matrix(basis),
                "fill": fill,
                "posterior": posterior_mean_matrix(prior.cov, corruption_cov),
                "one_call": one_call,
            }
            mse = {
                k: mse_db(linear_estimator_mse(a, prior.cov, corruption_cov))
                for k, a in maps.items()
            }
            rows.append(CorruptionShapedRow(kind, energy, float(s), mse, t))
    return rows


def format_rows(rows: Sequence[CorruptionShapedRow]) -> str:
    """A Markdown table: MSE in dB per estimator and the posterior mean's gains."""
    head = (
        "| prior | band energy | s | "
        + " | ".join(ESTIMATORS)
        + " | post − fill | post − notch | read t |"
    )
    lines = [head, "|" + "---|" * (len(ESTIMATORS) + 6)]
    for r in rows:
        cells = " | ".join(f"{r.mse_db[k]:.2f}" for k in ESTIMATORS)
        lines.append(
            f"| {r.prior} | {100 * r.band_energy:.1f}% | {r.corruption_std:g} | {cells} | "
            f"{r.gain_db('posterior', 'fill'):+.2f} | {r.gain_db('posterior', 'notch'):+.2f} | "
            f"{r.read_t} |"
        )
    return "\n".join(lines)


__all__ = [
    "DEFAULT_BAND",
    "DEFAULT_STDS",
    "ESTIMATORS",
    "CorruptionShapedRow",
    "band_energy_fraction",
    "corruption_shaped_rows",
    "envelope",
    "format_rows",
    "make_prior",
    "one_call_matrix",
]
