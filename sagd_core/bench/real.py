"""The real-size benchmark (``sagd bench real``): the classical tier against the notch and the
input on photos and synthetic scenes at 256² and 512², gray and RGB.

Scenes (:func:`scenes`): the ``natural`` photos of a split (``test``: the evaluation set,
``train``: for tuning), as centre crops at 256²; at 512² the centre crop of a photo that large
and the others' 256² crops upsampled ×2; and dead-leaves scenes, gray and RGB (seeds 1–2 for
``test``, 101–102 for ``train``). All are mapped to ``[0.15, 0.85]`` so that the corruptions,
added in linear intensity, never clip.

Corruptions (band spec given exactly): two off-grid periodic cosines (amplitude 0.08, notches
r = 0.012), column stripes (per-column offset, std 0.04, a 1° wedge along fx), band-limited noise
(annulus [0.15, 0.30), std 0.06) and a multiplicative halftone screen with harmonics (15 %
modulation, notches at the four peaks); each also with broadband Gaussian noise σ = 0.02 (then
declared as ``input_noise_std``).

Columns: identity (the input), notch, each classical estimator forced on every region
(``"model"`` in the spec), classical as chosen by the geometry, and the anchors that run here: a
textbook column-mean destriper, the wavelet-FFT destriper of Münch et al. (the method of
``pystripe``) and BM3D in its correlated-noise mode, the last two when the optional ``bench``
extra is installed (:mod:`sagd_core.bench.anchors`; ``bm3d`` has a non-commercial licence: a
benchmark extra only, never a dependency of the restore path).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import cv2
import numpy as np

from sagd_core.bench.anchors import bm3d_correlated, column_mean_destriper, wavelet_fft_destriper
from sagd_core.bench.scenes import HIGH, LOW, Scene, photo_crop
from sagd_core.data.builtin import NATURAL_TEST_IMAGES, NATURAL_TRAIN_IMAGES, _photo
from sagd_core.data.dead_leaves import dead_leaves
from sagd_core.restore.engine import restore
from sagd_core.restore.request import Method, RestoreRequest
from sagd_core.spectral.bands import BandSpec, RegionModel

KINDS = ("periodic", "stripes", "band_noise", "halftone")
SIGMAS = (0.0, 0.02)
ESTIMATORS: tuple[RegionModel, ...] = ("sinusoid", "stripes", "noise")
Split = Literal["test", "train"]
SPLITS: tuple[Split, ...] = ("test", "train")
#: Dead-leaves seeds per split (the train seeds never appear in the test figures).
LEAVES_SEEDS: dict[str, tuple[int, ...]] = {"test": (1, 2), "train": (101, 102)}


def _to_range(unit: np.ndarray) -> np.ndarray:
    return LOW + (HIGH - LOW) * np.clip(unit, 0.0, 1.0)


def scenes(
    sizes: Iterable[int] = (256, 512), *, quick: bool = False, split: Split = "test"
) -> list[Scene]:
    """The benchmark's scenes of ``split`` (see the module docstring); ``quick``: one photo and
    one dead-leaves scene per size and channel count."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    out: list[Scene] = []
    names = NATURAL_TEST_IMAGES if split == "test" else NATURAL_TRAIN_IMAGES
    photos = names[:1] if quick else names
    seeds = LEAVES_SEEDS[split]
    for size in sizes:
        for name in photos:
            crop = photo_crop(name, size if size <= 256 else 256)
            if size > 256 and min(_photo(name, 1).shape[1:]) >= size:
                crop = photo_crop(name, size)
            elif size > 256:
                crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)
            out.append(Scene(f"{name}-{size}", _to_range(crop)))
        for channels in (1, 3):
            for seed in seeds[:1] if quick else seeds:
                img = dead_leaves(size, channels, seed=seed)
                tag = "gray" if channels == 1 else "rgb"
                out.append(Scene(f"leaves{seed}-{tag}-{size}", _to_range(img)))
    return out


def _band_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    n = rng.standard_normal(shape)
    r = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :])
    keep = (r >= 0.15) & (r < 0.30)
    keep = keep if n.ndim == 2 else keep[..., None]
    out = np.fft.ifft2(np.fft.fft2(n, axes=(0, 1)) * keep, axes=(0, 1)).real
    return out * 0.06 / out.std()


def corrupt(scene: Scene, kind: str, sigma: float, seed: int) -> tuple[np.ndarray, BandSpec]:
    """The corrupted image (not clipped) and the exact band spec of ``kind``."""
    rng = np.random.default_rng(seed)
    x = scene.image
    n = scene.size
    yy, xx = np.mgrid[:n, :n].astype(np.float64)

    def per_channel(field: np.ndarray) -> np.ndarray:
        return field if x.ndim == 2 else field[..., None]

    if kind == "periodic":
        freqs = [(0.1234, 0.0567), (-0.0831, 0.2113)]
        phases = rng.uniform(0, 2 * np.pi, 2)
        field = sum(
            0.08 * np.cos(2 * np.pi * (fy * yy + fx * xx) + p)
            for (fy, fx), p in zip(freqs, phases, strict=True)
        )
        y = x + per_channel(np.asarray(field))
        regions: list[dict[str, Any]] = [
            {"kind": "notch", "fy": fy, "fx": fx, "radius": 0.012} for fy, fx in freqs
        ]
    elif kind == "stripes":
        profile = rng.normal(0, 0.04, (n,) if x.ndim == 2 else (n, 3))
        y = x + profile[None]
        regions = [
            {"kind": "wedge", "angle_deg": 0.0, "tolerance_deg": 1.0, "low": 1.5 / n, "high": 1.0}
        ]
    elif kind == "band_noise":
        y = x + _band_noise(x.shape, rng)
        regions = [{"kind": "annulus", "low": 0.15, "high": 0.30}]
    elif kind == "halftone":
        base = [(0.16, 0.07), (-0.07, 0.16)]
        screen = sum(np.cos(2 * np.pi * (fy * yy + fx * xx)) for fy, fx in base) + 0.35 * sum(
            np.cos(2 * np.pi * (2 * fy * yy + 2 * fx * xx)) for fy, fx in base
        )
        y = x * (1.0 + 0.15 * per_channel(np.asarray(screen)))
        regions = [
            {"kind": "notch", "fy": k * fy, "fx": k * fx, "radius": 0.012}
            for k in (1, 2)
            for fy, fx in base
        ]
    else:
        raise ValueError(f"unknown corruption {kind!r}; valid: {', '.join(KINDS)}")
    if sigma > 0:
        y = y + rng.normal(0, sigma, x.shape)
    return y, BandSpec.model_validate({"regions": regions})


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(
            np.asarray(a, np.float64), b, data_range=1.0, channel_axis=None if b.ndim == 2 else 2
        )
    )


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _restored(y: np.ndarray, request: RestoreRequest) -> tuple[np.ndarray, float]:
    """The unclipped restoration and its seconds (the whole :func:`restore` call)."""
    t0 = time.perf_counter()
    out = restore(y, request).unclipped
    return out, time.perf_counter() - t0


def columns_for(kind: str) -> list[str]:
    cols = ["identity", "notch"] + [f"classical:{m}" for m in ESTIMATORS] + ["classical"]
    if kind == "stripes":
        cols += ["anchor:column-mean", "anchor:wavelet-fft"]
    if kind == "band_noise":
        cols += ["wiener:unguarded", "anchor:bm3d"]
    return cols


def unguarded_wiener(y: np.ndarray, spec: BandSpec, sigma: float) -> np.ndarray:
    """The classical tier's Wiener filter without its probe-band guard (to score the guard's
    choice against the oracle's: whichever of it and the notch is closer to the truth)."""
    from sagd_core.restore.methods.classical.wiener import wiener_denoise
    from sagd_core.spectral.masks import band_mask

    chw = 2.0 * (y[None] if y.ndim == 2 else np.moveaxis(y, -1, 0)) - 1.0
    h, w = chw.shape[-2:]
    mask = band_mask(spec, h, w)
    out, _ = wiener_denoise(chw, {0: mask}, mask, 2.0 * sigma)
    unit = (out + 1.0) / 2.0
    return unit[0] if y.ndim == 2 else np.moveaxis(unit, 0, -1)


def run_case(scene: Scene, kind: str, sigma: float, seed: int) -> list[dict[str, Any]]:
    """Every column on one corrupted scene: PSNR, SSIM and seconds per image."""
    y, spec = corrupt(scene, kind, sigma, seed)
    declared = 2.0 * sigma  # model range [-1, 1]
    rows = []
    for column in columns_for(kind):
        if column == "identity":
            out, sec = y, 0.0
        elif column == "notch" or column == "classical":
            method: Method = "notch" if column == "notch" else "classical"
            out, sec = _restored(
                y, RestoreRequest(band=spec, method=method, input_noise_std=declared)
            )
        elif column.startswith("classical:"):
            model = column.split(":", 1)[1]
            forced = spec.model_copy(
                update={"regions": [r.model_copy(update={"model": model}) for r in spec.regions]}
            )
            out, sec = _restored(
                y, RestoreRequest(band=forced, method="classical", input_noise_std=declared)
            )
        elif column == "anchor:column-mean":
            out, sec = _timed(lambda: column_mean_destriper(y, spec))
        elif column == "anchor:wavelet-fft":
            t0 = time.perf_counter()
            maybe = wavelet_fft_destriper(y, spec)
            if maybe is None:
                continue
            out, sec = maybe, time.perf_counter() - t0
        elif column == "wiener:unguarded":
            out, sec = _timed(lambda: unguarded_wiener(y, spec, sigma))
        else:
            t0 = time.perf_counter()
            maybe = bm3d_correlated(y, spec, sigma)
            if maybe is None:
                continue
            out, sec = maybe, time.perf_counter() - t0
        rows.append(result_row(scene, kind, sigma, column, out, sec))
    return rows


def result_row(
    scene: Scene, kind: str, sigma: float, column: str, out: np.ndarray, seconds: float
) -> dict[str, Any]:
    """One benchmark row: where, which column, PSNR and SSIM against the clean scene, seconds."""
    return {
        "scene": scene.name,
        "size": scene.size,
        "channels": scene.channels,
        "kind": kind,
        "sigma": sigma,
        "column": column,
        "psnr": psnr(out, scene.image),
        "ssim": ssim(out, scene.image),
        "seconds": seconds,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means per (kind, σ, column) and the per-image checks of the targets."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    checks: list[str] = []
    keys = sorted({(r["kind"], r["sigma"]) for r in rows}, key=lambda k: (KINDS.index(k[0]), k[1]))
    for kind, sigma in keys:
        sub = [r for r in rows if r["kind"] == kind and r["sigma"] == sigma]
        label = f"{kind} σ={sigma:g}"
        table[label] = {}
        for column in dict.fromkeys(r["column"] for r in sub):
            vals = [r for r in sub if r["column"] == column]
            table[label][column] = {
                "psnr": float(np.mean([r["psnr"] for r in vals])),
                "ssim": float(np.mean([r["ssim"] for r in vals])),
                "seconds": float(np.mean([r["seconds"] for r in vals])),
            }
        by_scene: dict[str, dict[str, float]] = {}
        for r in sub:
            by_scene.setdefault(r["scene"], {})[r["column"]] = r["psnr"]
        worse_notch = [s for s, v in by_scene.items() if v["classical"] < v["notch"]]
        worse_input = [s for s, v in by_scene.items() if v["classical"] < v["identity"]]
        if kind == "band_noise":
            guard = [
                (abs(v["classical"] - v["notch"]) < 1e-6) == (v["notch"] >= v["wiener:unguarded"])
                for v in by_scene.values()
                if "wiener:unguarded" in v
            ]
            cost = [
                max(v["notch"], v["wiener:unguarded"]) - v["classical"] for v in by_scene.values()
            ]
            checks.append(
                f"{label}: the probe-band guard chose as the oracle would on {sum(guard)} of "
                f"{len(guard)} images (mean loss against the oracle {np.mean(cost):.2f} dB)"
            )
        if worse_notch:
            checks.append(f"{label}: classical below the notch on {', '.join(worse_notch)}")
        if worse_input:
            checks.append(f"{label}: classical below the input on {', '.join(worse_input)}")
    return {"table": table, "checks": checks}


def markdown(summary: dict[str, Any], metric: Literal["psnr", "ssim"] = "psnr") -> str:
    """One table: the mean ``metric`` (PSNR in dB, or SSIM) per case and column, the gain of
    classical over the notch, and the classical tier's mean seconds per image."""
    columns: list[str] = []
    for entry in summary["table"].values():
        columns += [c for c in entry if c not in columns]
    head = "| case | " + " | ".join(columns) + " | classical − notch | classical s |"
    lines = [head, "|" + "---|" * (len(columns) + 3)]
    digits = 2 if metric == "psnr" else 4
    for label, entry in summary["table"].items():
        cells = [f"{entry[c][metric]:.{digits}f}" if c in entry else "–" for c in columns]
        gain = entry["classical"][metric] - entry["notch"][metric]
        lines.append(
            f"| {label} | "
            + " | ".join(cells)
            + f" | {gain:+.{digits}f} | {entry['classical']['seconds']:.3f} |"
        )
    return "\n".join(lines)


def figure(scene: Scene, kinds: Iterable[str], seed: int, crop: int = 96) -> np.ndarray:
    """Crops (input, notch, classical) of ``scene`` for every corruption kind (σ = 0): an RGB
    image in [0, 1] (:func:`sagd_core.data.write_image`)."""
    from sagd_core.bench.figures import image_grid

    top, left = (scene.size - crop) // 2, (scene.size - crop) // 2  # the centre: content

    def chw(img: np.ndarray) -> np.ndarray:
        cut = np.asarray(img, np.float64)[top : top + crop, left : left + crop]
        cut = cut[None] if cut.ndim == 2 else np.moveaxis(cut, -1, 0)
        return 2.0 * cut - 1.0

    rows, labels = [], []
    for kind in kinds:
        y, spec = corrupt(scene, kind, 0.0, seed)
        outs = [y] + [
            restore(y, RestoreRequest(band=spec, method=m)).unclipped
            for m in ("notch", "classical")
        ]
        rows.append([chw(scene.image)] + [chw(o) for o in outs])
        labels.append(kind)
    return image_grid(
        rows, row_labels=labels, col_labels=["clean", "input", "notch", "classical"], scale=2
    )


__all__ = [
    "ESTIMATORS",
    "KINDS",
    "SIGMAS",
    "SPLITS",
    "Scene",
    "columns_for",
    "corrupt",
    "figure",
    "markdown",
    "result_row",
    "run_case",
    "scenes",
    "summarize",
]
