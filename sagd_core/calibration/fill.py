"""Calibrating a band model's fill on held-out *corrupted* images (DESIGN.md §4.3: "validate on
held-out data; never assume").

The fill ``x̃_B`` is computed from the trusted bands only, so it is independent of the band
corruption ``c_B`` of the same image (zero-mean, independent of the image). Hence, with
``y_B = x_B + c_B``, ``E⟨y_B, x̃_B⟩ = E⟨x_B, x̃_B⟩`` and the least-squares gain
``g* = E⟨x_B, x̃_B⟩ / E‖x̃_B‖²`` — the best scaling of the fill towards the clean band — can be
estimated from corrupted images alone (a Noise2Noise argument). ``g`` is clipped to [0, 1]: 0 means
the fill does not help and SAGD falls back to omitting the band (a notch), 1 trusts it fully. The
gain is calibrated for one (steps, samples) setting, which it records.

Use images the model was *not* trained on: a memorised training image's fill would correlate with
its own corruption and bias the gain upwards.

The same images give the corruption statistics of :mod:`band_prior`: the corruption-to-noise
ratio ρ (so the fill is read as the *clean* posterior mean) and the constant-magnitude bins of
periodic interference. The fill is calibrated read both with the measured ρ and without
correction (ρ = 0: right for a band model that did not learn this corruption), each at every
read level of :data:`READ_LEVELS` (where the posterior-mean chain reads its Tweedie ``x̂₀``:
later reads amplify model error less but keep more chain noise, and which wins depends on the
model); the candidate whose Noise2Noise estimate of the in-band squared error removed,
``2 g ⟨y_B, x̃_B⟩ − g² ‖x̃_B‖²``, is largest is kept, with its gain and read level. A fill whose
estimated reduction is not above :data:`SIGNIFICANCE` standard errors (over the images) gets
gain 0: with few or very corrupted images the estimate is too noisy to trust, and SAGD then
omits the band (a notch).

The calibration records the size it was measured at (``size``): a restoration whose network
works at another size does not trust the stored gain and checks the fill on a probe band of the
image instead (:mod:`sagd_core.restore.methods.sagd`). The calibration's own restorations are
marked :data:`~sagd_core.restore.methods.sagd.RAW_FILL` so that they run the fill as it is (no
guard, no one-call read).

For a corruption-shaped band model (:func:`~sagd_core.restore.methods.corruption_shaped.
corruption_shaped_reason`, or ``corruption_shaped=True`` for a model trained on a folder of images
corrupted by band-limited noise flat in its band) the calibration also records the corruption
level ``corruption_var`` (:func:`~sagd_core.spectral.corruption_level.estimate_corruption_level`)
and the one-call read's ``read_excess`` chosen by SURE on the same images
(:func:`~sagd_core.calibration.one_call_read.choose_read_excess`), with ``read_sure``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagd_core.calibration.one_call_read import choose_read_excess
from sagd_core.data import apply_corruption, load_builtin, parse_corruption
from sagd_core.data.builtin import Split
from sagd_core.data.corruptions import Corruption
from sagd_core.data.image_files import write_bytes_atomic
from sagd_core.metrics import band_split
from sagd_core.restore.engine import restore
from sagd_core.restore.methods.band_prior import corruption_ratio, magnitude_stats
from sagd_core.restore.methods.chains import MEAN_ALPHA_BAR
from sagd_core.restore.methods.corruption_shaped import corruption_shaped_reason
from sagd_core.restore.methods.sagd import RAW_FILL
from sagd_core.restore.models import CALIBRATION_FILE, LoadedModel, ModelSet
from sagd_core.restore.request import RestoreRequest
from sagd_core.spectral import BandSpec
from sagd_core.spectral.corruption_level import estimate_corruption_level
from sagd_core.training.checkpoints import TrainedModel

#: The fill is used only when its estimated error reduction exceeds this many standard errors.
SIGNIFICANCE = 2.0
#: The posterior-mean read levels ᾱ tried (the first is the restoration's default cut).
READ_LEVELS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.75)


# The corruption draw of held-out calibration images (bench, `sagd calibrate`, training jobs).
CORRUPTION_SEED = 777


def corrupted_builtin(
    dataset: str,
    corruption: str | dict[str, Any] | Corruption,
    *,
    image_size: int,
    channels: int,
    split: Split = "test",
    count: int = 64,
) -> np.ndarray:
    """``count`` images of a built-in dataset split, corrupted with ``corruption``, as float64
    ``(N, C, H, W)`` in the model range [-1, 1]: the held-out corrupted images a band model's
    fill is calibrated on."""
    if dataset == "natural":  # patches are drawn: ask for exactly ``count``
        clean = load_builtin(
            dataset, image_size=image_size, channels=channels, split=split, count=count
        )
    else:
        clean = load_builtin(dataset, image_size=image_size, channels=channels, split=split)
        clean = clean[:count]
    corrupted = apply_corruption(clean, parse_corruption(corruption), seed=CORRUPTION_SEED)
    return np.asarray(corrupted, dtype=np.float64)


def calibrate_fill_gain(
    model: LoadedModel,
    corrupted: np.ndarray,
    spec: BandSpec,
    *,
    steps: int = 50,
    samples: int = 4,
    seed: int = 0,
    directory: Path | None = None,
    device: str = "cpu",
    read_levels: tuple[float, ...] = READ_LEVELS,
    corruption_shaped: bool = False,
) -> dict[str, Any]:
    """Estimate the fill gain, ρ and read level on ``corrupted`` ``(N, C, H, W)`` images (model
    range), at their size; for a corruption-shaped model (or with ``corruption_shaped``) also
    the corruption level and the one-call read's κ (module docstring).

    Stores them in ``model.meta`` and, when ``directory`` is given, in its
    ``fill_calibration.json`` (atomically)."""
    if corrupted.ndim != 4 or len(corrupted) < 2:
        raise ValueError("calibration needs at least 2 images as (N, C, H, W)")
    h, w = corrupted.shape[-2:]
    weights = model.noise_op(h, w).weights.cpu().numpy()
    measured = corruption_ratio(corrupted, spec, weights)
    y_b, _ = band_split(corrupted.astype(np.float64), spec)
    candidates = [
        _candidate(
            model,
            corrupted,
            y_b,
            spec,
            rho,
            read,
            steps=steps,
            samples=samples,
            seed=seed,
            device=device,
        )
        for read in dict.fromkeys(read_levels or (MEAN_ALPHA_BAR,))
        for rho in dict.fromkeys((measured, 0.0))
    ]
    best = best_candidate(candidates)
    calib = {
        "gain": best["gain"],
        "raw_gain": best["raw_gain"],
        "images": len(corrupted),
        "steps": steps,
        "samples": samples,
        "band": spec.model_dump(mode="json"),
        "corruption_ratio": best["corruption_ratio"],
        "measured_corruption_ratio": measured,
        "read_alpha_bar": best["read_alpha_bar"],
        "candidates": candidates,
        "magnitude": magnitude_stats(corrupted, spec),
        "size": [int(h), int(w)],
    }
    if corruption_shaped or corruption_shaped_reason(model) is not None:
        calib.update(one_call_calibration(model, corrupted, spec, weights, seed=seed))
    model.meta["fill_calibration"] = calib
    if directory is not None:
        write_bytes_atomic(Path(directory) / CALIBRATION_FILE, json.dumps(calib, indent=2).encode())
    return calib


def one_call_calibration(
    model: LoadedModel, corrupted: np.ndarray, spec: BandSpec, weights: np.ndarray, *, seed: int
) -> dict[str, Any]:
    """The corruption level of ``corrupted`` and the one-call read's κ chosen by SURE on them
    (module docstring); a level too small to read gives no κ."""
    level = estimate_corruption_level(corrupted, spec, weights)
    out: dict[str, Any] = {
        "corruption_shaped": True,
        "corruption_var": level.variance,
        "read_excess": None,
        "read_sure": None,
    }
    if level.variance > 0.0:
        held_out = torch.as_tensor(corrupted, dtype=torch.float32, device=model.device)
        with torch.no_grad():
            choice = choose_read_excess(model, held_out, level.variance**0.5, seed=seed)
        out["read_excess"] = choice.excess
        out["read_sure"] = {str(k): v for k, v in choice.sure.items()}
    return out


def best_candidate(candidates: list[dict[str, float]]) -> dict[str, float]:
    """The candidate with the largest (significant) estimated reduction; on ties (e.g. none
    significant: all 0) the first, i.e. the default read level and the measured ρ."""
    if not candidates:
        raise ValueError("no calibration candidates")
    return max(candidates, key=lambda c: c["reduction"])


def _candidate(
    model: LoadedModel,
    corrupted: np.ndarray,
    y_b: np.ndarray,
    spec: BandSpec,
    rho: float,
    read: float,
    *,
    steps: int,
    samples: int,
    seed: int,
    device: str,
) -> dict[str, float]:
    """The gain of the fill read at ``ᾱ = read`` with ratio ``rho`` and its Noise2Noise estimate
    of the in-band squared error it removes, ``2 g ⟨y_B, x̃_B⟩ − g² ‖x̃_B‖²`` (per image)."""
    meta = {k: v for k, v in model.meta.items() if k != "fill_calibration"}
    meta["fill_calibration"] = {"gain": 1.0, "corruption_ratio": rho, "read_alpha_bar": read}
    meta[RAW_FILL] = True
    uncalibrated = TrainedModel(
        net=model.net, config=model.config, schedule=model.schedule, meta=meta, device=model.device
    )
    request = RestoreRequest(band=spec, method="sagd", steps=steps, samples=samples, seed=seed)
    fills = []
    for y in corrupted:
        res = restore(
            np.transpose((y + 1.0) / 2.0, (1, 2, 0)),
            request,
            ModelSet(band=uncalibrated),
            device=device,
        )
        out = res.unclipped if res.unclipped.ndim == 3 else res.unclipped[:, :, None]
        fills.append(np.transpose(2.0 * out.astype(np.float64) - 1.0, (2, 0, 1)))
    fill_b, _ = band_split(np.stack(fills), spec)
    nums, dens = (y_b * fill_b).sum(axis=(1, 2, 3)), (fill_b**2).sum(axis=(1, 2, 3))
    num, den = float(nums.sum()), float(dens.sum())
    raw = num / den if den > 0 else 0.0
    gain = float(np.clip(raw, 0.0, 1.0))
    per_image = 2.0 * gain * nums - gain**2 * dens
    mean = float(per_image.mean())
    stderr = float(per_image.std(ddof=1) / np.sqrt(len(per_image)))
    significant = mean > SIGNIFICANCE * stderr
    return {
        "corruption_ratio": rho,
        "read_alpha_bar": read,
        "gain": gain if significant else 0.0,
        "raw_gain": raw,
        "reduction": mean if significant else 0.0,
        "estimated_reduction": mean,
        "stderr": stderr,
    }


__all__ = [
    "READ_LEVELS",
    "SIGNIFICANCE",
    "best_candidate",
    "calibrate_fill_gain",
    "one_call_calibration",
]
