"""Precision and recall of band detection on synthetic corruptions (``sagd bench restore``).

Clean held-out images get a random corruption of each kind (or none); :func:`analyze_chw` must
find it. A true periodic frequency counts as found when a detected notch covers it (within its
radius plus one bin), and a notch at an integer combination of the true frequencies (order ≤ 3:
harmonics and intermodulation that clipping creates) is a true detection, not a false one;
oriented stripes when a wedge points the same way (within its tolerance plus 3°); band noise
when a detected annulus overlaps the true one with interval IoU ≥ 0.5. Every
detected region that matches nothing, including anything found on a clean image, is a false
positive. :mod:`sagd_core.bench.detection_real` shares these rules (:func:`covers`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sagd_core.analysis.analyze import AnalyzeConfig, analyze_chw
from sagd_core.data import apply_corruption, parse_corruption

KINDS = ("clean", "periodic", "oriented", "band_noise")


def random_corruption(kind: str, rng: np.random.Generator) -> dict[str, Any] | None:
    """A random corruption of ``kind`` within ranges a user would call visible."""
    if kind == "clean":
        return None
    if kind == "periodic":
        freqs: list[tuple[float, float]] = []
        while len(freqs) < int(rng.integers(1, 4)):
            r, theta = rng.uniform(0.08, 0.42), rng.uniform(0, math.pi)
            f = (round(r * math.sin(theta), 4), round(r * math.cos(theta), 4))
            if all(min(math.dist(f, g), math.dist(f, (-g[0], -g[1]))) > 0.06 for g in freqs):
                freqs.append(f)
        return {
            "kind": "periodic",
            "frequencies": freqs,
            "amplitude": float(rng.choice([0.05, 0.15])),
        }
    if kind == "oriented":
        low = float(rng.uniform(0.05, 0.2))
        return {
            "kind": "oriented",
            "angle_deg": float(rng.uniform(0, 180)),
            "low": low,
            "high": low + float(rng.uniform(0.15, 0.3)),
            "amplitude": float(rng.choice([0.1, 0.3])),
        }
    if kind == "band_noise":
        low = float(rng.uniform(0.08, 0.3))
        return {
            "kind": "band_noise",
            "low": low,
            "high": low + float(rng.uniform(0.06, 0.15)),
            "gamma": float(rng.choice([0.25, 1.0])),
        }
    raise ValueError(f"unknown corruption kind {kind!r}; valid: {', '.join(KINDS)}")


#: Detections at integer combinations of the true frequencies up to this order are true:
#: clipping and 8-bit rounding of a corrupted image create them (harmonics 2f, intermodulation
#: f1 ± f2), so they are corruption in the image, not image content.
COMBINATION_ORDER = 3


def wrap(f: float) -> float:
    """A frequency folded into ``[-0.5, 0.5)`` (aliasing)."""
    return (f + 0.5) % 1.0 - 0.5


def _combinations(freqs: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The frequencies and their integer combinations ``a·f_i + b·f_j`` up to
    :data:`COMBINATION_ORDER`, folded into the grid."""
    out = list(freqs)
    n = COMBINATION_ORDER
    for i, fi in enumerate(freqs):
        for j, fj in enumerate(freqs):
            if j < i:
                continue
            for a in range(-n, n + 1):
                for b in range(-n, n + 1):
                    if abs(a) + abs(b) > n or (a == 0 and b == 0) or (i == j and b != 0):
                        continue
                    f = (wrap(a * fi[0] + b * fj[0]), wrap(a * fi[1] + b * fj[1]))
                    if math.hypot(*f) > 1e-9:
                        out.append(f)
    return out


def _near(region: dict[str, Any], freqs: list[tuple[float, float]], bw: float) -> bool:
    return any(
        min(
            math.hypot(region["fy"] - fy, region["fx"] - fx),
            math.hypot(region["fy"] + fy, region["fx"] + fx),
        )
        <= region["radius"] + bw
        for fy, fx in freqs
    )


def covers(region: dict[str, Any], truth: dict[str, Any], bw: float) -> bool:
    """Whether a detected region is true for ``truth`` (see the module docstring)."""
    kind = truth["kind"]
    if kind == "periodic" and region["kind"] == "notch":
        return _near(region, _combinations(truth["frequencies"]), bw)
    if kind == "oriented" and region["kind"] == "wedge":
        d = abs((region["angle_deg"] - truth["angle_deg"] + 90.0) % 180.0 - 90.0)
        return bool(d <= region["tolerance_deg"] + 3.0)
    if kind == "band_noise" and region["kind"] == "annulus":
        inter = min(region["high"], truth["high"]) - max(region["low"], truth["low"])
        union = max(region["high"], truth["high"]) - min(region["low"], truth["low"])
        return inter / union >= 0.5
    return False


def item_covered(region: dict[str, Any], truth: dict[str, Any], bw: float) -> bool:
    """Whether ``region`` finds ``truth`` itself (recall: combinations do not count)."""
    if truth["kind"] == "periodic":
        return region["kind"] == "notch" and _near(region, truth["frequencies"], bw)
    return covers(region, truth, bw)


def items_found(truth: dict[str, Any], regions: list[dict[str, Any]], bw: float) -> int:
    """How many of the truth's items (frequencies, or 1) some region covers."""
    if truth["kind"] == "periodic":
        return sum(
            any(item_covered(r, {**truth, "frequencies": [f]}, bw) for r in regions)
            for f in truth["frequencies"]
        )
    return int(any(covers(r, truth, bw) for r in regions))


@dataclass
class DetectionScore:
    """Counts per corruption kind; precision = true detections / detections."""

    detections: int = 0
    true_detections: int = 0
    items: int = 0  # truths to find (frequencies, lines, bands)
    found: int = 0
    images: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_detections / self.detections if self.detections else float("nan")

    @property
    def recall(self) -> float:
        return self.found / self.items if self.items else float("nan")


def evaluate_detection(
    images: np.ndarray,
    *,
    seed: int = 0,
    kinds: tuple[str, ...] = KINDS,
    config: AnalyzeConfig | None = None,
) -> dict[str, DetectionScore]:
    """Corrupt each image ``(N, C, H, W)`` (model range) with one random corruption per kind
    and score the detections."""
    rng = np.random.default_rng(seed)
    scores = {k: DetectionScore() for k in kinds}
    bw = 1.0 / min(images.shape[-2:])
    for i, clean in enumerate(images):
        for kind in kinds:
            truth = random_corruption(kind, rng)
            x = (
                clean
                if truth is None
                else apply_corruption(
                    clean[None], parse_corruption(truth), seed=seed * 100_003 + i
                )[0]
            )
            regions = [r.region for r in analyze_chw(x, config).regions]
            sc = scores[kind]
            sc.images += 1
            sc.detections += len(regions)
            if truth is not None:
                sc.true_detections += sum(covers(r, truth, bw) for r in regions)
                sc.items += len(truth["frequencies"]) if kind == "periodic" else 1
                sc.found += items_found(truth, regions, bw)
            if len(sc.examples) < 3:
                sc.examples.append({"truth": truth, "detected": regions})
    return scores


__all__ = [
    "KINDS",
    "DetectionScore",
    "covers",
    "evaluate_detection",
    "items_found",
    "random_corruption",
]
