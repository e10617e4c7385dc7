"""Precision and recall of band detection at real sizes (``sagd bench detection``): photos and
dead-leaves scenes at 256² and 512², gray and RGB, each with random visible corruptions.

Scenes (:func:`scenes`): the ``natural`` photos of a split (``test``: the evaluation set,
``train``: for tuning) as centre crops, upsampled (bicubic) where the photo is smaller than the
side, and dead-leaves scenes (seeds 1–3 for ``test``, 101–103 for ``train``), mapped to
``[0.15, 0.85]``. Gray photos give RGB scenes by repeating the channel.

Corruptions (:func:`corrupt`, unit range, then clipped and rounded to 8 bits like a saved file):

- ``clean``: none (every detection is a false positive);
- ``periodic``: 1–3 off-grid cosines, ``r ∈ [0.05, 0.45]``, amplitude 0.015–0.06 each;
- ``stripes``: column or row offsets (white profile per channel, spectral line at 0° or 90°) or
  oblique stripes ``p(x cos θ + y sin θ)`` (linearly interpolated white profile), std 0.01–0.04;
- ``band_noise``: Gaussian noise in an annulus ``[low, low + 0.05…0.15)``, ``low ∈ [0.06,
  0.32]``, pixel std 0.02–0.05, independent per channel;
- ``halftone``: a multiplicative screen ``x · (1 + m s)``, ``m ∈ [0.08, 0.2]``, with two
  perpendicular base frequencies (``r ∈ [0.1, 0.3]``), their second harmonics (0.35) and the
  cross terms ``f1 ± f2`` (0.3); harmonics beyond Nyquist alias (the moiré). Every one of the six
  peaks (wrapped) is an item to find.

Matching follows :mod:`sagd_core.bench.detection`: a peak is found when a notch covers it (its
radius plus one bin), stripes when a wedge points their way (its tolerance plus 3°), band noise
when an annulus has interval IoU ≥ 0.5 with the true one. A detection matching nothing is a false
positive; halftone peaks are scored as periodic frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from sagd_core.analysis.analyze import AnalyzeConfig, analyze_image
from sagd_core.bench.detection import DetectionScore, covers, items_found, wrap
from sagd_core.bench.scenes import HIGH, LOW, Scene, photo_crop
from sagd_core.data.builtin import NATURAL_TEST_IMAGES, NATURAL_TRAIN_IMAGES
from sagd_core.data.dead_leaves import dead_leaves

KINDS = ("clean", "periodic", "stripes", "band_noise", "halftone")
Split = Literal["train", "test"]
LEAVES_SEEDS: dict[str, tuple[int, ...]] = {"test": (1, 2, 3), "train": (101, 102, 103)}


def _to_range(unit: np.ndarray) -> np.ndarray:
    lo, hi = float(unit.min()), float(unit.max())
    return LOW + (HIGH - LOW) * (unit - lo) / max(hi - lo, 1e-6)


def scenes(
    split: Split = "test",
    sizes: Iterable[int] = (256, 512),
    *,
    photos: int | None = None,
    leaves: int | None = None,
) -> list[Scene]:
    """The scenes of ``split`` at every size, gray and RGB; ``photos``/``leaves`` keep only the
    first few photos / dead-leaves seeds."""
    names = NATURAL_TEST_IMAGES if split == "test" else NATURAL_TRAIN_IMAGES
    names = names[:photos] if photos is not None else names
    seeds = LEAVES_SEEDS[split][:leaves] if leaves is not None else LEAVES_SEEDS[split]
    out: list[Scene] = []
    for size in sizes:
        for channels in (1, 3):
            tag = "gray" if channels == 1 else "rgb"
            for name in names:
                crop = photo_crop(name, size, channels)
                out.append(Scene(f"{name}-{tag}-{size}", _to_range(crop)))
            for seed in seeds:
                img = dead_leaves(size, channels, seed=seed)
                out.append(Scene(f"leaves{seed}-{tag}-{size}", _to_range(img)))
    return out


def _separated(freqs: list[tuple[float, float]], min_dist: float) -> bool:
    for i, f in enumerate(freqs):
        if math.hypot(*f) < min_dist or max(abs(f[0]), abs(f[1])) > 0.47:
            return False
        for g in freqs[:i]:
            if min(math.dist(f, g), math.dist(f, (-g[0], -g[1]))) < min_dist:
                return False
    return True


def _band_field(
    shape: tuple[int, ...], low: float, high: float, rng: np.random.Generator
) -> np.ndarray:
    n = rng.standard_normal(shape)
    r = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :])
    keep = (r >= low) & (r < high)
    keep = keep if n.ndim == 2 else keep[..., None]
    out = np.fft.ifft2(np.fft.fft2(n, axes=(0, 1)) * keep, axes=(0, 1)).real
    return out / out.std(axis=(0, 1), keepdims=True)


def _stripes_field(
    shape: tuple[int, ...], angle_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """Unit-std stripes whose profile varies along ``(cos θ, sin θ)`` (spectral line at θ)."""
    h, w = shape[:2]
    c = 1 if len(shape) == 2 else shape[2]
    if angle_deg == 0.0:
        field = np.broadcast_to(rng.standard_normal((1, w, c)), (h, w, c))
    elif angle_deg == 90.0:
        field = np.broadcast_to(rng.standard_normal((h, 1, c)), (h, w, c))
    else:
        t = math.radians(angle_deg)
        yy, xx = np.mgrid[:h, :w].astype(np.float64)
        u = xx * math.cos(t) + yy * math.sin(t)
        lo = math.floor(float(u.min()))
        grid = np.arange(lo, math.ceil(float(u.max())) + 2, dtype=np.float64)
        field = np.stack(
            [np.interp(u, grid, rng.standard_normal(grid.size)) for _ in range(c)], axis=-1
        )
    field = field / field.std(axis=(0, 1), keepdims=True)
    return field[..., 0] if len(shape) == 2 else field


def corrupt(
    scene: Scene, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """The corrupted image (clipped, 8-bit levels) and its truth in the form
    :func:`sagd_core.bench.detection.covers` reads (``None`` for ``clean``)."""
    x = scene.image
    n = scene.size
    yy, xx = np.mgrid[:n, :n].astype(np.float64)

    def per_channel(field: np.ndarray) -> np.ndarray:
        return field if x.ndim == 2 else field[..., None]

    def cosine(f: tuple[float, float], phase: float = 0.0) -> np.ndarray:
        return np.cos(2 * np.pi * (f[0] * yy + f[1] * xx) + phase)

    truth: dict[str, Any] | None
    if kind == "clean":
        y, truth = x, None
    elif kind == "periodic":
        count = int(rng.integers(1, 4))
        while True:
            freqs = []
            for _ in range(count):
                r, theta = rng.uniform(0.05, 0.45), rng.uniform(0, math.pi)
                freqs.append((r * math.sin(theta), r * math.cos(theta)))
            if _separated(freqs, 0.04):
                break
        field = sum(rng.uniform(0.015, 0.06) * cosine(f, rng.uniform(0, 2 * np.pi)) for f in freqs)
        y = x + per_channel(np.asarray(field))
        truth = {"kind": "periodic", "frequencies": freqs}
    elif kind == "stripes":
        mode = rng.choice(["column", "row", "oblique"])
        if mode == "oblique":
            angle = float(rng.uniform(10, 80) + rng.choice([0.0, 90.0]))
        else:
            angle = 0.0 if mode == "column" else 90.0
        y = x + rng.uniform(0.01, 0.04) * _stripes_field(x.shape, angle, rng)
        truth = {"kind": "oriented", "angle_deg": angle}
    elif kind == "band_noise":
        low = float(rng.uniform(0.06, 0.32))
        high = low + float(rng.uniform(0.05, 0.15))
        y = x + rng.uniform(0.02, 0.05) * _band_field(x.shape, low, high, rng)
        truth = {"kind": "band_noise", "low": low, "high": high}
    elif kind == "halftone":
        while True:
            r, a = rng.uniform(0.1, 0.3), rng.uniform(0, math.pi / 2)
            f1 = (r * math.sin(a), r * math.cos(a))
            f2 = (f1[1], -f1[0])
            terms = [(f1, 1.0), (f2, 1.0)]
            terms += [((2 * f[0], 2 * f[1]), 0.35) for f in (f1, f2)]
            terms += [((f1[0] + s * f2[0], f1[1] + s * f2[1]), 0.3) for s in (1, -1)]
            peaks = [(wrap(f[0]), wrap(f[1])) for f, _ in terms]
            if _separated(peaks, 0.04):
                break
        screen = sum(c * cosine(f) for f, c in terms)
        y = x * (1.0 + rng.uniform(0.08, 0.2) * per_channel(np.asarray(screen)))
        truth = {"kind": "periodic", "frequencies": peaks}
    else:
        raise ValueError(f"unknown corruption {kind!r}; valid: {', '.join(KINDS)}")
    return np.round(np.clip(y, 0.0, 1.0) * 255.0) / 255.0, truth


def score_image(
    score: DetectionScore, truth: dict[str, Any] | None, regions: list[dict[str, Any]], bw: float
) -> None:
    """Add one image's detections to ``score`` (the rules of :mod:`..detection`)."""
    score.images += 1
    score.detections += len(regions)
    if truth is not None:
        score.true_detections += sum(covers(r, truth, bw) for r in regions)
        score.items += len(truth["frequencies"]) if truth["kind"] == "periodic" else 1
        score.found += items_found(truth, regions, bw)
    if len(score.examples) < 3:
        score.examples.append({"truth": truth, "detected": regions})


def evaluate(
    scene_list: list[Scene],
    *,
    kinds: Iterable[str] = KINDS,
    draws: int = 2,
    seed: int = 0,
    config: AnalyzeConfig | None = None,
) -> list[dict[str, Any]]:
    """One row per analysed image: scene, size, channels, kind, truth, detected regions."""
    rows = []
    for i, scene in enumerate(scene_list):
        for k, kind in enumerate(kinds):
            for d in range(draws):
                rng = np.random.default_rng([seed, i, k, d])
                y, truth = corrupt(scene, kind, rng)
                regions = [r.region for r in analyze_image(y, config).regions]
                rows.append(
                    {
                        "scene": scene.name,
                        "size": scene.size,
                        "channels": scene.channels,
                        "kind": kind,
                        "truth": truth,
                        "detected": regions,
                    }
                )
    return rows


def summarize(
    rows: list[dict[str, Any]], by: tuple[str, ...] = ("kind", "size")
) -> dict[tuple[Any, ...], DetectionScore]:
    """Scores grouped by the row fields ``by`` (``("kind",)``: per kind over everything)."""
    out: dict[tuple[Any, ...], DetectionScore] = {}
    for row in rows:
        key = tuple(row[b] for b in by)
        score = out.setdefault(key, DetectionScore())
        score_image(score, row["truth"], row["detected"], 1.0 / row["size"])
    return out


def overall_precision(rows: list[dict[str, Any]]) -> float:
    """True detections / detections over every image, clean ones included."""
    total = DetectionScore()
    for row in rows:
        score_image(total, row["truth"], row["detected"], 1.0 / row["size"])
    return total.precision


def markdown(rows: list[dict[str, Any]]) -> str:
    """Precision and recall per kind and size (and over both sizes); clean rows give false
    positives per image."""
    sizes = sorted({r["size"] for r in rows})
    kinds = [k for k in KINDS if any(r["kind"] == k for r in rows)]
    per = summarize(rows)
    per_kind = summarize(rows, ("kind",))
    head = "| kind | " + " | ".join(f"{s}² P / R" for s in sizes) + " | all P / R | items |"
    lines = [head, "|" + "---|" * (len(sizes) + 3)]

    def cell(sc: DetectionScore, kind: str) -> str:
        if kind == "clean":
            return f"{sc.detections / max(sc.images, 1):.2f} FP/img"
        return f"{sc.precision:.2f} / {sc.recall:.2f}"

    for kind in kinds:
        cells = [cell(per[(kind, s)], kind) if (kind, s) in per else "–" for s in sizes]
        total = per_kind[(kind,)]
        items = total.images if kind == "clean" else total.items
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {cell(total, kind)} | {items} |")
    lines.append(f"\noverall precision (clean images included): {overall_precision(rows):.3f}")
    return "\n".join(lines)


__all__ = [
    "KINDS",
    "LEAVES_SEEDS",
    "Scene",
    "corrupt",
    "evaluate",
    "markdown",
    "overall_precision",
    "scenes",
    "score_image",
    "summarize",
]
