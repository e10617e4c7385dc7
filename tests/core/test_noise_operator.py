"""Shaped noise: spectrum = w², real, seeded, omitted band empty; weight families (DESIGN.md §3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagd_core.spectral import (
    BpmBand,
    NoiseSpec,
    RadialProfile,
    band_mask,
    half_grid_multiplicity,
    noise_weights,
    parse_band_spec,
    radius_grid,
)
from sagd_core.spectral.operator import SpectralNoise
from sagd_core.spectral.weights import DegenerateNoiseError

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})
SPECS = {
    "white": NoiseSpec(),
    "plw": NoiseSpec(kind="plw", alpha=-0.5),
    "bpm": NoiseSpec(
        kind="bpm",
        bands=[BpmBand(low=0, high=0.2, gamma=0.5), BpmBand(low=0.2, high=0.8, gamma=0.5)],
    ),
    "exp": NoiseSpec(kind="exp", beta=4.0),
    "equal_snr": NoiseSpec(
        kind="equal_snr",
        spectrum=RadialProfile(radii=[0.0, 0.1, 0.4, 0.8], power=[5.0, 2.0, 0.5, 0.1]),
    ),
    "band": NoiseSpec(kind="band", band=BAND),
    "omit": NoiseSpec(kind="plw", alpha=-0.3, omit=BAND),
}


def empirical_power(eps: torch.Tensor) -> np.ndarray:
    f = torch.fft.rfft2(eps.double(), norm="ortho")
    return (f.abs() ** 2).mean(dim=(0, 1)).numpy()


@pytest.mark.parametrize("name", list(SPECS))
def test_empirical_power_spectrum_equals_w_squared(name: str) -> None:
    op = SpectralNoise(SPECS[name], 24, 20)
    eps = op.sample((2000, 2, 24, 20), generator=torch.Generator().manual_seed(1))
    assert eps.dtype == torch.float32 and not eps.is_complex()
    expected = op.power_spectrum().double().numpy()
    measured = empirical_power(eps)
    # Each bin is an average of 4000 |N(0,σ²)|² draws (χ²): relative std ≈ 1/√4000 ≈ 1.6 %
    # (2× for DC/Nyquist, which are real). Compare within 6 std.
    tol = 6 * np.sqrt(2 / 4000) * expected + 1e-9
    assert np.all(np.abs(measured - expected) <= tol)
    # unit pixel variance (analytic normalisation)
    assert abs(float(eps.var()) - 1.0) < 0.02


@pytest.mark.parametrize("name", list(SPECS))
def test_weights_normalised_symmetric_nonnegative(name: str) -> None:
    w = noise_weights(SPECS[name], 32, 30)
    mult = half_grid_multiplicity(32, 30)
    assert np.isclose((w**2 * mult).sum() / (32 * 30), 1.0)
    assert np.all(w >= 0)
    # symmetry within the half grid: column 0 (and Nyquist) must satisfy w(fy) = w(−fy)
    np.testing.assert_allclose(w[:, 0], w[(-np.arange(32)) % 32, 0])


def test_seeded_draws_repeat_and_differ_by_seed() -> None:
    op = SpectralNoise(SPECS["omit"], 16, 16)
    a = op.sample((3, 1, 16, 16), torch.Generator().manual_seed(7))
    b = op.sample((3, 1, 16, 16), torch.Generator().manual_seed(7))
    c = op.sample((3, 1, 16, 16), torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_white_noise_is_the_plain_gaussian_draw() -> None:
    op = SpectralNoise(NoiseSpec(), 8, 8)
    a = op.sample((2, 1, 8, 8), torch.Generator().manual_seed(3))
    b = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_omitted_band_holds_no_energy() -> None:
    op = SpectralNoise(SPECS["omit"], 32, 32, dtype=torch.float64)
    eps = op.sample((64, 1, 32, 32), torch.Generator().manual_seed(0))
    power = empirical_power(eps)
    mask = band_mask(BAND, 32, 32)
    mult = half_grid_multiplicity(32, 32)
    assert (power * mask * mult).sum() / (power * mult).sum() <= 1e-10
    op32 = SpectralNoise(SPECS["omit"], 32, 32)  # float32 too
    p32 = empirical_power(op32.sample((64, 1, 32, 32), torch.Generator().manual_seed(0)))
    assert (p32 * mask * mult).sum() / (p32 * mult).sum() <= 1e-10


def test_plw_floor_keeps_dc_bounded() -> None:
    w = noise_weights(NoiseSpec(kind="plw", alpha=-1.0), 32, 32)
    # with the floor r_min = 1/32, DC weighs exactly as much as the first ring
    assert np.isclose(w[0, 0], w[0, 1])


def test_bpm_equal_gammas_is_white() -> None:
    # one pass then normalise: γ = 0.5/0.5 over bands covering the grid gives white noise
    spec = NoiseSpec(
        kind="bpm",
        bands=[BpmBand(low=0, high=0.25, gamma=0.5), BpmBand(low=0.25, high=1.0, gamma=0.5)],
    )
    np.testing.assert_allclose(noise_weights(spec, 16, 16), 1.0)


def test_projection_and_score() -> None:
    op = SpectralNoise(SPECS["omit"], 16, 16, dtype=torch.float64)
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    px = op.project_trusted(x)
    torch.testing.assert_close(op.project_trusted(px), px)  # a projection
    eps = op.sample((2, 1, 16, 16), torch.Generator().manual_seed(1))
    # score = −Σ⁺ ε / σ, so applying Σ = T_w² to the score returns −ε/σ (ε lies in range(Σ))
    score = op.eps_to_score(eps, 0.5)
    torch.testing.assert_close(op.apply(op.apply(score)), -eps / 0.5)
    # zero in the omitted band (pseudo-inverse)
    f = torch.fft.rfft2(score, norm="ortho")
    assert float((f.abs() * torch.from_numpy(band_mask(BAND, 16, 16).copy())).max()) < 1e-9


def test_degenerate_and_shape_errors() -> None:
    everything = parse_band_spec(
        {
            "regions": [{"kind": "box", "fy": [-0.5, 0.5], "fx": [-0.5, 0.5]}],
            "allow_ill_posed": True,
        }
    )
    with pytest.raises(DegenerateNoiseError):
        noise_weights(NoiseSpec(omit=everything), 8, 8)
    op = SpectralNoise(NoiseSpec(), 8, 8)
    with pytest.raises(ValueError, match="built for 8×8"):
        op.apply(torch.zeros(1, 1, 9, 8))
    with pytest.raises(ValueError, match="needs"):
        NoiseSpec(kind="bpm")


def test_radial_profile_equal_snr_matches_spectrum_shape() -> None:
    prof = RadialProfile(radii=[0.0, 0.8], power=[4.0, 1.0])
    w = noise_weights(NoiseSpec(kind="equal_snr", spectrum=prof), 16, 16)
    r = radius_grid(16, 16)
    ratio = w**2 / np.interp(r, [0.0, 0.8], [4.0, 1.0])
    np.testing.assert_allclose(ratio, ratio.flat[0])


def test_score_is_finite_when_a_weight_is_subnormal() -> None:
    """A power ``w²`` that is subnormal in float32 used to give ``1/w² = inf`` and NaN scores:
    it counts as zero in the pseudo-inverse (relative cutoff), and the rest is unchanged."""
    op = SpectralNoise(SPECS["omit"], 16, 16, dtype=torch.float32)
    weights = op.weights.clone()
    weights[3, 2] = 1e-22  # w² = 1e-44: subnormal in float32, 1/w² overflows
    op.weights = weights
    eps = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    score = op.eps_to_score(eps, 0.5)
    assert torch.isfinite(score).all()
    f = torch.fft.rfft2(score.to(torch.float64), norm="ortho")
    assert float(f[..., 3, 2].abs()) < 1e-6  # treated as zero power: no score there
