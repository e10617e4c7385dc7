"""Calibrating the omission model's denoising of the trusted bands (DESIGN.md §4.2) on held-out
corrupted images: a Wiener-like shrinkage informed by the model.

Corrupted training images are *clean* outside the band, so their trusted bands are exact
targets for the denoiser: add broadband noise of the declared std ``s``, denoise with the
omission model (Tweedie's posterior mean at ``t*``), and fit, per ring of radial frequency, the
least-squares blend ``x̂(f) = a_k D(f) + b_k Y(f)`` of the denoised image ``D`` and the noisy
input ``Y`` against the clean trusted content. ``(a, b) = (1, 0)`` trusts the model, ``(0, G)`` is
a Wiener filter; an under-trained model (few steps, few images) gets pulled towards whichever
does better on the held-out images. The fit is per noise level; a restoration at another
declared level leaves the denoiser's output as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sagd_core.restore.engine import restore
from sagd_core.restore.methods.denoise_blend import META_KEY, RING_EDGES, ring_index
from sagd_core.restore.models import LoadedModel, ModelSet
from sagd_core.restore.request import RestoreRequest
from sagd_core.spectral.bands import BandSpec
from sagd_core.spectral.grid import half_grid_multiplicity
from sagd_core.spectral.masks import band_mask
from sagd_core.training.checkpoints import TrainedModel

#: Fewest (bin, image, channel) samples to fit a ring's two gains; rings with fewer keep the
#: denoiser's output as it is (a = 1, b = 0).
MIN_SAMPLES = 64
#: Relative ridge of the per-ring least squares (towards the denoiser's output).
RIDGE = 1e-2


def calibrate_denoiser(
    model: LoadedModel,
    corrupted: np.ndarray,
    spec: BandSpec,
    noise_std: float,
    *,
    steps: int = 50,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Fit the per-ring blend on ``corrupted`` ``(N, C, H, W)`` held-out images (model range) at
    broadband noise ``noise_std``; stores it in ``model.meta["denoise_calibration"]`` (one entry
    per noise level) and returns it."""
    if corrupted.ndim != 4 or len(corrupted) < 2 or noise_std <= 0:
        raise ValueError("calibration needs (N, C, H, W) images, N ≥ 2, and noise_std > 0")
    raw = TrainedModel(
        net=model.net,
        config=model.config,
        schedule=model.schedule,
        meta={k: v for k, v in model.meta.items() if k != META_KEY},
        device=model.device,
    )
    rng = np.random.default_rng(seed)
    clean = corrupted.astype(np.float64)
    noisy = clean + noise_std * rng.standard_normal(clean.shape)
    request = RestoreRequest(
        band=spec, method="sagd", steps=steps, seed=seed, input_noise_std=noise_std
    )
    denoised = []
    for y in noisy:
        res = restore(
            np.transpose((y + 1.0) / 2.0, (1, 2, 0)), request, ModelSet(omission=raw), device=device
        )
        out = res.unclipped if res.unclipped.ndim == 3 else res.unclipped[:, :, None]
        denoised.append(np.transpose(2.0 * out.astype(np.float64) - 1.0, (2, 0, 1)))
    h, w = clean.shape[-2:]
    fx = np.fft.rfft2(clean, norm="ortho")
    fy = np.fft.rfft2(noisy, norm="ortho")
    fd = np.fft.rfft2(np.stack(denoised), norm="ortho")
    rings = ring_index(h, w)
    weight = half_grid_multiplicity(h, w) * (band_mask(spec, h, w) == 0)
    a_out, b_out = [], []
    for k in range(len(RING_EDGES) - 1):
        sel = weight * (rings == k)
        if (sel > 0).sum() * clean.shape[0] * clean.shape[1] < MIN_SAMPLES:
            a_out.append(1.0)
            b_out.append(0.0)
            continue

        def dot(p: np.ndarray, q: np.ndarray, sel: np.ndarray = sel) -> float:
            return float((np.real(p * np.conj(q)) * sel).sum())

        gram = np.array([[dot(fd, fd), dot(fd, fy)], [dot(fd, fy), dot(fy, fy)]])
        rhs = np.array([dot(fd, fx), dot(fy, fx)])
        # A small ridge towards (1, 0): when D ≈ c·Y the two gains are not identifiable.
        ridge = RIDGE * float(np.trace(gram)) / 2.0
        try:
            a, b = np.linalg.solve(gram + ridge * np.eye(2), rhs + ridge * np.array([1.0, 0.0]))
        except np.linalg.LinAlgError:
            a, b = 1.0, 0.0
        a_out.append(float(a))
        b_out.append(float(b))
    calib = {
        "noise_std": noise_std,
        "ring_edges": list(RING_EDGES),
        "a": a_out,
        "b": b_out,
        "images": len(corrupted),
        "steps": steps,
    }
    others = [c for c in model.meta.get(META_KEY, []) if c.get("noise_std") != noise_std]
    model.meta[META_KEY] = [*others, calib]
    return calib


__all__ = ["calibrate_denoiser"]
