"""Minimal line charts drawn with OpenCV (no plotting dependency) for ``sagd bench schedule``.

One job: turn a few ``(label, x, y)`` series into a PNG-ready BGR image with axes, ticks, a title
and a legend; linear or log axes. Non-finite points (and non-positive ones on log axes) are
skipped, splitting a line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

_COLORS = [  # BGR, colour-blind-friendly (Okabe–Ito)
    (178, 114, 0),
    (0, 94, 213),
    (115, 158, 0),
    (167, 121, 204),
    (233, 180, 86),
    (66, 228, 240),
    (0, 0, 0),
    (0, 159, 230),
]
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Series:
    label: str
    x: np.ndarray
    y: np.ndarray


def _nice_ticks(lo: float, hi: float, count: int = 6) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.array([lo])
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return np.arange(start, hi + step * 1e-9, step)


def _fmt(v: float, log: bool) -> str:
    if log:
        if abs(v - round(v)) < 1e-9 and abs(v) >= 3:
            return f"1e{round(v):d}"
        v = 10**v
    if v == 0:
        return "0"
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.0e}"


class _Axis:
    def __init__(self, values: np.ndarray, log: bool, start: int, stop: int) -> None:
        self.log, self.start, self.stop = log, start, stop
        v = np.log10(values) if log else values
        lo, hi = float(np.min(v)), float(np.max(v))
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        pad = 0.03 * (hi - lo)
        self.lo, self.hi = lo - pad, hi + pad

    def to_px(self, values: np.ndarray) -> np.ndarray:
        v = np.log10(values) if self.log else values
        return self.start + (v - self.lo) / (self.hi - self.lo) * (self.stop - self.start)

    def ticks(self) -> np.ndarray:
        if self.log:
            if self.hi - self.lo < 3:  # few decades: 1-2-5 ticks
                k = np.arange(math.floor(self.lo), math.ceil(self.hi) + 1, dtype=float)
                cand = np.log10(np.outer(10**k, [1.0, 2.0, 5.0]).ravel())
                return cand[(cand >= self.lo) & (cand <= self.hi)]
            decades = np.arange(math.ceil(self.lo), math.floor(self.hi) + 1, dtype=float)
            if decades.size > 8:
                decades = decades[:: math.ceil(decades.size / 8)]
            return decades
        return _nice_ticks(self.lo, self.hi)


def _valid(s: Series, logx: bool, logy: bool) -> np.ndarray:
    x, y = np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if logx:
        ok &= x > 0
    if logy:
        ok &= y > 0
    return ok


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
    size: tuple[int, int] = (900, 560),
) -> np.ndarray:
    """A ``(height, width, 3)`` uint8 BGR chart of ``series``."""
    width, height = size
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 90, width - 20, 62, height - 60
    masks = [_valid(s, logx, logy) for s in series]
    xs = [np.asarray(s.x, float)[m] for s, m in zip(series, masks, strict=True)]
    ys = [np.asarray(s.y, float)[m] for s, m in zip(series, masks, strict=True)]
    if not any(x.size for x in xs):
        cv2.putText(img, f"{title}: no data", (left, top), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        return img
    ax = _Axis(np.concatenate(xs), logx, left, right)
    ay = _Axis(np.concatenate(ys), logy, bottom, top)
    grey, black = (220, 220, 220), (0, 0, 0)
    for t in ax.ticks():
        px = round(float(ax.to_px(np.array([10**t if logx else t]))[0]))
        cv2.line(img, (px, top), (px, bottom), grey, 1)
        label = _fmt(t, logx)
        cv2.putText(
            img, label, (px - 4 * len(label), bottom + 20), _FONT, 0.45, black, 1, cv2.LINE_AA
        )
    for t in ay.ticks():
        py = round(float(ay.to_px(np.array([10**t if logy else t]))[0]))
        cv2.line(img, (left, py), (right, py), grey, 1)
        cv2.putText(img, _fmt(t, logy), (8, py + 5), _FONT, 0.45, black, 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (right, bottom), black, 1)
    cv2.putText(img, title, (8, 24), _FONT, 0.6, black, 1, cv2.LINE_AA)
    cv2.putText(
        img,
        xlabel,
        ((left + right) // 2 - 4 * len(xlabel), height - 18),
        _FONT,
        0.5,
        black,
        1,
        cv2.LINE_AA,
    )
    cv2.putText(img, ylabel, (8, top - 10), _FONT, 0.5, (80, 80, 80), 1, cv2.LINE_AA)
    for k, (s, x, y) in enumerate(zip(series, xs, ys, strict=True)):
        color = _COLORS[k % len(_COLORS)]
        pts = np.stack([ax.to_px(x), ay.to_px(y)], axis=1).round().astype(np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, color, 2, cv2.LINE_AA)
        for p in pts if len(pts) <= 60 else []:
            cv2.circle(img, (int(p[0]), int(p[1])), 3, color, -1, cv2.LINE_AA)
        ly = top + 18 + 20 * k
        cv2.line(img, (right - 190, ly - 5), (right - 165, ly - 5), color, 3)
        cv2.putText(img, s.label[:24], (right - 158, ly), _FONT, 0.45, black, 1, cv2.LINE_AA)
    return img


def tile(images: Sequence[np.ndarray], cols: int = 2) -> np.ndarray:
    """Arrange equally sized charts in a grid (missing cells white)."""
    if not images:
        raise ValueError("nothing to tile")
    h, w = images[0].shape[:2]
    rows = math.ceil(len(images) / cols)
    out = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = im
    return out


def save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
