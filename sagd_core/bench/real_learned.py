"""The learned columns of the real-size benchmark (``sagd bench real --learned``): ``auto`` given
every model (the default model and the retrained band model; with the method it chose and why,
per image), the shipped band reader's read without the guard where ``auto`` would read
(``read:default``: noise bands, and fitted bands with broadband noise after the classical fits),
DDNM with the shipped default
model (unless ``--ddnm-steps 0``), and ``sagd`` with
band models retrained on the benchmark's own corrupted kind (``--retrained KIND=DIR``), on the
same scenes, corruptions and seeds as :mod:`sagd_core.bench.real`; for a retrained model that
reads the clean image in one call, also that read without the guard
(``read:retrained``, σ = 0 only: with broadband noise the read is not taken), to show what the
guard chose between, and the same model's out-of-band-only posterior-mean fill, also unguarded
(``fill:retrained``, with ``fill=True``: the band sampled from the trusted bands alone,
:data:`FILL_SAMPLES` chains; SAGD.md §4.3 asks for the read to be measured against it).

The default model is a full-support prior (``sagd_core/models/default/``), so it fills through
``ddnm``; ``method="sagd"`` needs a band model and gets one only from ``--retrained``, which may
name one gray and one RGB model per kind: each scene gets the model of its own channels. (A gray
model cannot run an RGB scene; an RGB model could run a gray scene as three equal channels, but
the band's noise would then be equal in the three channels, which is not the noise it was
trained on, so the bench does not do that.)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sagd_core.bench.real import corrupt, result_row
from sagd_core.bench.scenes import Scene
from sagd_core.restore.auto import reader_reason
from sagd_core.restore.engine import restore
from sagd_core.restore.inputs import prepare_image
from sagd_core.restore.models import LoadedModel, ModelSet
from sagd_core.restore.request import RestoreRequest
from sagd_core.spectral.bands import BandSpec

#: Sampler steps of the DDNM column (the default model's card measures 25).
DDNM_STEPS = 25
#: Chains averaged by the ``fill:retrained`` column's posterior-mean fill.
FILL_SAMPLES = 4


def learned_rows(
    scene: Scene,
    kind: str,
    sigma: float,
    seed: int,
    *,
    default: ModelSet | None,
    retrained: dict[str, list[ModelSet]],
    steps: int = DDNM_STEPS,
    fill: bool = False,
) -> list[dict[str, Any]]:
    """``auto``, ``ddnm:default`` (when ``default`` is given) and ``sagd:retrained`` (when a band
    model for ``kind`` with the scene's channels is among ``retrained[kind]``) on one corrupted
    scene; the ``auto`` row also holds the method it chose and why (``chosen``, ``why``)."""
    y, spec = corrupt(scene, kind, sigma, seed)
    declared = 2.0 * sigma  # model range [-1, 1]
    band = next(
        (
            m.band
            for m in retrained.get(kind, [])
            if m.band is not None and m.band.channels == scene.channels
        ),
        None,
    )
    # auto gets every model a user could give it: the default model and the retrained band model
    given = ModelSet(full=None if default is None else default.full, band=band)
    runs: list[tuple[str, RestoreRequest, ModelSet | None]] = [
        ("auto", RestoreRequest(band=spec, method="auto", input_noise_std=declared), given)
    ]
    if default is not None:
        request = RestoreRequest(
            band=spec, method="ddnm", steps=steps, seed=seed, input_noise_std=declared
        )
        runs.append(("ddnm:default", request, default))
    if band is not None:
        request = RestoreRequest(band=spec, method="sagd", seed=seed, input_noise_std=declared)
        runs.append(("sagd:retrained", request, ModelSet(band=band)))
    rows = []
    if reader_reason(RestoreRequest(band=spec, input_noise_std=declared)) is not None:
        t0 = time.perf_counter()
        default_read = unguarded_default_read(y, spec, declared)
        sec = time.perf_counter() - t0
        rows.append(result_row(scene, kind, sigma, "read:default", default_read, sec))
    if band is not None and sigma == 0.0:
        t0 = time.perf_counter()
        read = unguarded_read(band, y, spec)
        if read is not None:
            sec = time.perf_counter() - t0
            rows.append(result_row(scene, kind, sigma, "read:retrained", read, sec))
            if fill:
                rows.append(unguarded_fill_row(scene, kind, sigma, seed, y, spec, band))
    for column, request, models in runs:
        t0 = time.perf_counter()
        result = restore(y, request, models)
        row = result_row(scene, kind, sigma, column, result.unclipped, time.perf_counter() - t0)
        if column == "auto":
            choice = result.report["details"].get("auto", {})
            row["chosen"] = choice.get("chosen", result.report["method"])
            row["why"] = choice.get("why", "")
        rows.append(row)
    return rows


def unguarded_default_read(y: np.ndarray, spec: BandSpec, declared: float) -> np.ndarray:
    """The shipped band reader's one-call read of ``y`` (H, W[, C]) in [0, 1] without the
    guard, at the band level measured on the image (what ``auto`` reads before its guard; on a
    band the classical tier fits, after subtracting its fits, as ``auto`` does)."""
    from sagd_core.restore.engine import DEFAULT_OVERLAP
    from sagd_core.restore.methods.band_read import READ_TILE, default_reader, read, reader_input

    prepared = prepare_image(y)
    request = RestoreRequest(band=spec, input_noise_std=declared)
    start, levels = reader_input(prepared.chw, request)
    estimate = read(
        default_reader(), start, request, levels, tile=READ_TILE, overlap=DEFAULT_OVERLAP
    )
    return prepared.to_caller(estimate, clip=False)


def unguarded_read(model: LoadedModel, y: np.ndarray, spec: BandSpec) -> np.ndarray | None:
    """The one-call read of a corruption-shaped band model on the whole image ``y`` (H, W[, C])
    in [0, 1], without the guard (what ``sagd`` would return if the guard always
    kept it), or None when the model is not corruption-shaped or no read applies."""
    import torch

    from sagd_core.restore.methods.corruption_shaped import (
        ReadSetting,
        corruption_shaped_reason,
        one_call_clean_mean,
        read_setting,
    )

    if corruption_shaped_reason(model) is None:
        return None
    prepared = prepare_image(y)  # model range, (C, H, W), as restore() sees it
    setting = read_setting(model, prepared.chw, spec, calibrated_here=False)
    if not isinstance(setting, ReadSetting):
        return None
    with torch.no_grad():
        estimate, _ = one_call_clean_mean(
            model, torch.as_tensor(prepared.chw[None]), setting.corruption_std, t=setting.t
        )
    return prepared.to_caller(estimate[0].double().numpy(), clip=False)


def unguarded_fill_row(
    scene: Scene,
    kind: str,
    sigma: float,
    seed: int,
    y: np.ndarray,
    spec: BandSpec,
    model: LoadedModel,
) -> dict[str, Any]:
    """The ``fill:retrained`` row: ``model``'s posterior-mean fill of the band from the trusted
    bands alone (the band of ``y`` discarded), without the guard or the one-call read."""
    from sagd_core.restore.methods.sagd import as_raw_fill

    request = RestoreRequest(band=spec, method="sagd", seed=seed, samples=FILL_SAMPLES)
    t0 = time.perf_counter()
    result = restore(y, request, ModelSet(band=as_raw_fill(model)))
    return result_row(
        scene, kind, sigma, "fill:retrained", result.unclipped, time.perf_counter() - t0
    )


def auto_choices(rows: list[dict[str, Any]]) -> list[str]:
    """One line per distinct (choice, reason) of the ``auto`` rows, with how many images."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        if row["column"] == "auto":
            key = (row["chosen"], row["why"])
            counts[key] = counts.get(key, 0) + 1
    return [f"auto chose {c} on {n} image(s): {why}" for (c, why), n in counts.items()]


def learned_checks(rows: list[dict[str, Any]]) -> list[str]:
    """The learned-restoration targets, per case: ``auto`` at or above classical on every image,
    and each learned column's mean gap to classical (its worst image in brackets)."""
    classical = {
        (r["scene"], r["kind"], r["sigma"]): r["psnr"] for r in rows if r["column"] == "classical"
    }
    out = auto_choices(rows)
    cases = sorted({(r["kind"], r["sigma"]) for r in rows})
    columns = (
        "auto",
        "read:default",
        "ddnm:default",
        "sagd:retrained",
        "read:retrained",
        "fill:retrained",
    )
    for column in columns:
        for kind, sigma in cases:
            gaps = {
                r["scene"]: r["psnr"] - classical[(r["scene"], kind, sigma)]
                for r in rows
                if r["column"] == column and r["kind"] == kind and r["sigma"] == sigma
            }
            if not gaps:
                continue
            worst = min(gaps, key=lambda s: gaps[s])
            mean = sum(gaps.values()) / len(gaps)
            below = [s for s, g in gaps.items() if g < -1e-9]
            line = (
                f"{kind} σ={sigma:g}: {column} − classical {mean:+.2f} dB "
                f"(worst {gaps[worst]:+.2f}, {worst}; {len(gaps)} images)"
            )
            if column == "auto" and below:
                line += f"; BELOW classical on {', '.join(below)}"
            out.append(line)
    return out


__all__ = [
    "DDNM_STEPS",
    "FILL_SAMPLES",
    "auto_choices",
    "learned_checks",
    "learned_rows",
    "unguarded_default_read",
    "unguarded_fill_row",
    "unguarded_read",
]
