"""Periodic stripes on Gaussian images and an exact (oracle) band model for their band, shared by
the band-statistics and the read-level tests."""

from __future__ import annotations

import numpy as np

from sagd_core.data import apply_corruption, parse_corruption
from sagd_core.restore.gaussian_oracle import oracle_model, sample_gaussian_images
from sagd_core.restore.models import LoadedModel
from sagd_core.spectral import BandSpec, NoiseSpec

PERIODIC = {
    "kind": "periodic",
    "amplitude": 0.3,
    "notch_radius": 0.04,
    "frequencies": [[0.25, 0.125], [-0.125, 0.3125]],
}


def periodic_images(
    count: int, *, seed: int, corruption_seed: int
) -> tuple[BandSpec, np.ndarray, np.ndarray]:
    """The band of :data:`PERIODIC`, ``count`` clean 16×16 Gaussian images (std ~0.3) and their
    corrupted copies, float64 ``(N, 1, 16, 16)``."""
    corruption = parse_corruption(PERIODIC)
    clean = 0.3 * sample_gaussian_images(count, 1, 16, 16, seed=seed)
    y = apply_corruption(clean.astype(np.float32), corruption, seed=corruption_seed)
    return corruption.band_spec(), clean, y.astype(np.float64)


def periodic_band_model(spec: BandSpec) -> LoadedModel:
    """The oracle band model of ``spec`` for those images."""
    noise = NoiseSpec(kind="band", band=spec)
    return oracle_model("band", noise, band=spec, spectrum={"scale": 0.0018})
