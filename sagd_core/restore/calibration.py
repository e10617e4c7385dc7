"""Calibrating a band model's fill on held-out *corrupted* images (SAGD.md §4.3: "validate on
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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sagd_core.data.image_files import write_bytes_atomic
from sagd_core.metrics import band_split
from sagd_core.restore.api import RestoreRequest, restore
from sagd_core.restore.models import CALIBRATION_FILE, LoadedModel, ModelSet
from sagd_core.spectral import BandSpec
from sagd_core.training.checkpoints import TrainedModel


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
) -> dict[str, Any]:
    """Estimate the fill gain on ``corrupted`` ``(N, C, H, W)`` images (model range).

    Stores it in ``model.meta`` and, when ``directory`` is given, in its
    ``fill_calibration.json`` (atomically)."""
    if corrupted.ndim != 4 or len(corrupted) < 2:
        raise ValueError("calibration needs at least 2 images as (N, C, H, W)")
    raw_meta = {k: v for k, v in model.meta.items() if k != "fill_calibration"}
    uncalibrated = TrainedModel(net=model.net, config=model.config, schedule=model.schedule,
                                meta=raw_meta, device=model.device)
    request = RestoreRequest(band=spec, method="sagd", steps=steps, samples=samples, seed=seed)
    fills = []
    for y in corrupted:
        res = restore(np.transpose((y + 1.0) / 2.0, (1, 2, 0)), request,
                      ModelSet(band=uncalibrated), device=device)
        out = res.unclipped if res.unclipped.ndim == 3 else res.unclipped[:, :, None]
        fills.append(np.transpose(2.0 * out.astype(np.float64) - 1.0, (2, 0, 1)))
    fill_b, _ = band_split(np.stack(fills), spec)
    y_b, _ = band_split(corrupted.astype(np.float64), spec)
    num, den = float((y_b * fill_b).sum()), float((fill_b**2).sum())
    raw = num / den if den > 0 else 0.0
    calib = {
        "gain": float(np.clip(raw, 0.0, 1.0)), "raw_gain": raw, "images": len(corrupted),
        "steps": steps, "samples": samples, "band": spec.model_dump(mode="json"),
    }
    model.meta["fill_calibration"] = calib
    if directory is not None:
        write_bytes_atomic(Path(directory) / CALIBRATION_FILE,
                           json.dumps(calib, indent=2).encode())
    return calib


__all__ = ["calibrate_fill_gain"]
