"""The corruption-shaped identity on a *network* (DESIGN.md §4.3, last point): a band model trained
only on corrupted Gaussian images, read in one call, against the exact posterior mean, the band
fill and the notch.

Clean images come from a known Gaussian prior (:func:`~sagd_core.bench.corruption_shaped.
make_prior`), are corrupted by the project's ``band_noise`` (``gamma = s``: exactly the band
model's forward noise times ``s``), and a band model (``w = M``) is trained on the corrupted
images. Nothing downstream sees a clean image: ``s`` is estimated from the training images
(:mod:`sagd_core.spectral.corruption_level`) and the read level is chosen by SURE on the held-out
corrupted images (:mod:`sagd_core.calibration.one_call_read`). The clean images are used only to
score (MSE in dB, lower is better); the exact posterior and the notch are closed-form maps applied
to the same held-out images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sagd_core.bench.corruption_shaped import PriorKind, make_prior
from sagd_core.calibration.one_call_read import choose_read_excess
from sagd_core.data import apply_corruption, parse_corruption
from sagd_core.models import unet_preset
from sagd_core.restore.methods.corruption_shaped import one_call_clean_mean
from sagd_core.restore.methods.sagd import fill_plan, fill_tile
from sagd_core.restore.models import load_model
from sagd_core.restore.progress import Progress
from sagd_core.spectral.bands import parse_band_spec
from sagd_core.spectral.corruption_level import estimate_corruption_level
from sagd_core.spectral.gaussian_posterior import (
    circulant_covariance,
    mse_db,
    notch_matrix,
    posterior_mean_matrix,
    trusted_basis,
)
from sagd_core.spectral.masks import band_mask
from sagd_core.spectral.weights import NoiseSpec, noise_weights
from sagd_core.training import train
from sagd_core.training.config import DataConfig, TrainConfig

LOW, HIGH = 0.15, 0.3


@dataclass
class NetworkCheck:
    """Figures of one run; ``one_call`` and ``sure`` are keyed by the read's κ."""

    corruption_std: float
    estimated_std: float
    mse_db: dict[str, float]
    one_call: dict[float, float] = field(default_factory=dict)
    sure: dict[float, float] = field(default_factory=dict)
    chosen_excess: float = 0.0


def _mse_db(estimate: np.ndarray, clean: np.ndarray) -> float:
    return mse_db(float(((estimate.astype(np.float64) - clean) ** 2).mean()))


def run_network_check(
    out_dir: Path | str,
    *,
    corruption_std: float = 0.3,
    steps: int = 1500,
    size: int = 16,
    count: int = 6000,
    held_out: int = 200,
    prior: PriorKind = "stationary",
    excesses: Sequence[float] = (0.03, 0.1, 0.3, 1.0, 3.0),
    fill_chains: int = 4,
    seed: int = 0,
) -> NetworkCheck:
    """Train a ``cpu-tiny`` band model into ``out_dir`` and measure it (module docstring)."""
    band = parse_band_spec({"regions": [{"kind": "annulus", "low": LOW, "high": HIGH}]})
    noise = NoiseSpec(kind="band", band=band)
    gaussian = make_prior(prior, size)
    clean = gaussian.sample(count, np.random.default_rng(seed)).reshape(-1, 1, size, size)
    corruption = parse_corruption(
        {"kind": "band_noise", "low": LOW, "high": HIGH, "gamma": corruption_std}
    )
    corrupted = apply_corruption(clean, corruption, seed=seed + 1)
    train_y, test_y, test_x = corrupted[:-held_out], corrupted[-held_out:], clean[-held_out:]
    config = TrainConfig(
        model=unet_preset("cpu-tiny", 1),
        noise=noise,
        band=band,
        role="band",
        data=DataConfig(image_size=size),
        steps=steps,
        checkpoint_every=steps,
        device="cpu",
        seed=seed,
    )
    train(config, out_dir, images=train_y, resume=False)
    model = load_model(out_dir)

    weights = noise_weights(noise, size, size)
    s_hat = math.sqrt(estimate_corruption_level(train_y, band, weights).variance)
    noise_cov = circulant_covariance(weights**2, size, size)
    flat = test_y.reshape(held_out, -1).astype(np.float64)
    posterior = posterior_mean_matrix(gaussian.cov, corruption_std**2 * noise_cov)
    notch = notch_matrix(trusted_basis(1.0 - band_mask(band, size, size), size, size))
    figures = {
        "input": _mse_db(test_y, test_x),
        "notch": _mse_db((flat @ notch.T).reshape(test_y.shape), test_x),
        "posterior (exact)": _mse_db((flat @ posterior.T).reshape(test_y.shape), test_x),
    }
    y = torch.as_tensor(test_y, dtype=torch.float32)
    choice = choose_read_excess(model, y, s_hat, candidates=excesses, seed=seed)
    check = NetworkCheck(corruption_std, s_hat, figures, chosen_excess=choice.excess)
    for excess in excesses:
        estimate, _ = one_call_clean_mean(model, y, s_hat, excess=excess)
        check.one_call[excess] = _mse_db(estimate.numpy(), test_x)
        check.sure[excess] = mse_db(choice.sure[excess])
    figures["one call (SURE choice)"] = check.one_call[choice.excess]

    plan = fill_plan(model.schedule.plan(10), True)
    gen = torch.Generator().manual_seed(seed)
    fills = [
        fill_tile(
            model, y, band, plan, generator=gen, progress=Progress(1, None), posterior_mean=True
        )
        .to(torch.float64)
        .numpy()
        for _ in range(fill_chains)
    ]
    figures["band fill"] = _mse_db(np.mean(fills, axis=0), test_x)
    return check


def format_check(check: NetworkCheck) -> str:
    """A few lines: the figures, then the one-call read and its SURE per κ."""
    lines = [
        f"band_noise s = {check.corruption_std:g} (estimated {check.estimated_std:.4g}); "
        "MSE in dB, lower is better",
        *(f"  {name}: {value:.2f}" for name, value in check.mse_db.items()),
        "  one call per κ (true / SURE): "
        + ", ".join(
            f"{k:g}: {check.one_call[k]:.2f} / {check.sure[k]:.2f}" for k in sorted(check.one_call)
        )
        + f"; chosen κ = {check.chosen_excess:g}",
    ]
    return "\n".join(lines)


__all__ = ["NetworkCheck", "format_check", "run_network_check"]
