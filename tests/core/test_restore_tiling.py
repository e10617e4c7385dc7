"""Tiling (DESIGN.md §4.5): tiles cover the image, blending is a partition of unity, and the
whole-image out-of-band projection makes tiled and untiled results agree outside the band."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sagd_core.restore import ModelSet, RestoreRequest, restore
from sagd_core.restore.gaussian_oracle import oracle_model, sample_gaussian_images
from sagd_core.restore.tiling import run_tiled, tile_grid, tile_starts
from sagd_core.spectral import NoiseSpec, band_mask, parse_band_spec

BAND = parse_band_spec({"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]})


@pytest.mark.parametrize(
    ("size", "tile", "overlap"), [(10, 16, 4), (64, 16, 4), (70, 24, 8), (33, 32, 8), (100, 17, 5)]
)
def test_tiles_cover_the_axis_with_at_least_the_overlap(size: int, tile: int, overlap: int) -> None:
    starts = tile_starts(size, tile, overlap)
    covered = np.zeros(size, dtype=bool)
    for s in starts:
        assert s >= 0 and s + min(tile, size) <= size
        covered[s : s + tile] = True
    assert covered.all()
    for a, b in itertools.pairwise(starts):
        assert b > a and a + tile - b >= overlap


def test_bad_tiling_parameters_raise() -> None:
    with pytest.raises(ValueError):
        tile_starts(64, 16, 16)


@pytest.mark.parametrize("shape", [(2, 1, 50, 37), (1, 3, 24, 24), (1, 1, 70, 90)])
def test_blending_is_a_partition_of_unity(shape: tuple[int, int, int, int]) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(run_tiled(lambda t: t, x, 20, 6), x)
    torch.testing.assert_close(run_tiled(lambda t: 3.0 * t + 1.0, x, 20, 6), 3.0 * x + 1.0)


def test_tiled_restoration_matches_untiled_out_of_band_and_fills_in_band() -> None:
    h, w = 48, 40
    x = sample_gaussian_images(1, 3, h, w, seed=5, scale=0.002)[0].transpose(1, 2, 0)
    y = ((x + 1.0) / 2.0).astype(np.float32)
    band = oracle_model(
        "band", NoiseSpec(kind="band", band=BAND), band=BAND, channels=3, spectrum={"scale": 0.002}
    )
    req = RestoreRequest(band=BAND, method="sagd", steps=8)
    whole = restore(y, req, ModelSet(band=band))
    tiled = restore(y, req, ModelSet(band=band), tile_size=24, tile_overlap=8)
    assert tiled.report["tiles"]["count"] == len(tile_grid(h, w, 24, 8)) > 1
    assert whole.report["tiles"] is None
    for res in (whole, tiled):
        assert res.report["out_of_band_residual"] <= 1e-5
        assert res.report["band_energy_total"]["after"] > 0
    spec_a = np.fft.rfft2(np.transpose(tiled.unclipped, (2, 0, 1)), norm="ortho")
    spec_b = np.fft.rfft2(np.transpose(whole.unclipped, (2, 0, 1)), norm="ortho")
    trusted = np.broadcast_to(band_mask(BAND, h, w) == 0, spec_a.shape)
    rel = np.linalg.norm((spec_a - spec_b)[trusted]) / np.linalg.norm(spec_b[trusted])
    assert rel <= 1e-5
