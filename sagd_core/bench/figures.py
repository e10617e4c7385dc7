"""Benchmark figures drawn with OpenCV only (no plotting library): labelled image grids, centred
log power spectra and simple line charts. Every function returns float ``(H, W, 3)`` in [0, 1]
for :func:`sagd_core.data.write_image`."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_COLOURS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
]  # RGB; canvases are uint8


def to_display(chw: np.ndarray, scale: int) -> np.ndarray:
    """Model-range ``(C, H, W)`` → RGB ``(H·s, W·s, 3)`` in [0, 1], nearest-neighbour upscaled."""
    img = np.clip((np.asarray(chw, dtype=np.float64) + 1.0) / 2.0, 0.0, 1.0)
    hwc = np.transpose(img, (1, 2, 0))
    if hwc.shape[2] == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    return np.kron(hwc, np.ones((scale, scale, 1)))


def log_spectrum(chw: np.ndarray) -> np.ndarray:
    """Centred log power spectrum (channels averaged) scaled to [−1, 1] as a ``(1, H, W)`` image."""
    x = np.asarray(chw, dtype=np.float64)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    power = (np.abs(np.fft.fft2(x, norm="ortho")) ** 2).mean(axis=0)
    logp = np.fft.fftshift(np.log10(power + 1e-8))
    lo, hi = np.percentile(logp, 1), logp.max()
    return (2.0 * np.clip((logp - lo) / max(hi - lo, 1e-9), 0, 1) - 1.0)[None]


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], size: float = 0.4) -> None:
    cv2.putText(canvas, text, org, _FONT, size, (0, 0, 0), 1, cv2.LINE_AA)


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    scale: int = 4,
    pad: int = 4,
) -> np.ndarray:
    """A labelled grid of model-range ``(C, H, W)`` images (all the same size)."""
    cells = [[to_display(img, scale) for img in row] for row in rows]
    ch, cw = cells[0][0].shape[:2]
    left, top = 110, 18
    height = top + len(cells) * (ch + pad)
    width = left + max(len(r) for r in cells) * (cw + pad)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    for j, label in enumerate(col_labels):
        _text(canvas, label[:16], (left + j * (cw + pad), 13))
    for i, row in enumerate(cells):
        y0 = top + i * (ch + pad)
        _text(canvas, row_labels[i][:18], (2, y0 + ch // 2))
        for j, cell in enumerate(row):
            x0 = left + j * (cw + pad)
            canvas[y0 : y0 + ch, x0 : x0 + cw] = np.rint(cell * 255).astype(np.uint8)
    return canvas.astype(np.float64) / 255.0


def line_chart(
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    size: tuple[int, int] = (640, 400),
) -> np.ndarray:
    """Lines ``{label: (x, y)}`` on shared linear axes with a legend."""
    w, h = size
    left, right, top, bottom = 60, 150, 30, 40
    canvas = np.full((h, w, 3), 255, dtype=np.uint8)
    xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()])
    ys = np.concatenate([np.asarray(y, float) for _, y in series.values()])
    ys = ys[np.isfinite(ys)]
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    y1 = y1 if y1 > y0 else y0 + 1.0
    x1 = x1 if x1 > x0 else x0 + 1.0

    def px(x: float, y: float) -> tuple[int, int]:
        u = left + (x - x0) / (x1 - x0) * (w - left - right)
        v = h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)
        return round(u), round(v)

    cv2.rectangle(canvas, px(x0, y1), px(x1, y0), (0, 0, 0), 1)
    for frac in (0.0, 0.5, 1.0):
        _text(canvas, f"{y0 + frac * (y1 - y0):.3g}", (2, px(x0, y0 + frac * (y1 - y0))[1] + 4))
        _text(
            canvas,
            f"{x0 + frac * (x1 - x0):.3g}",
            (px(x0 + frac * (x1 - x0), y0)[0] - 10, h - bottom + 15),
        )
    _text(canvas, title, (left, 18), 0.5)
    _text(canvas, xlabel, (w // 2 - 40, h - 8))
    _text(canvas, ylabel, (2, top - 8))
    for k, (label, (x, y)) in enumerate(series.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        pts = np.array(
            [px(float(a), float(b)) for a, b in zip(x, y, strict=True) if np.isfinite(b)],
            dtype=np.int32,
        )
        if len(pts) > 1:
            cv2.polylines(canvas, [pts], False, colour, 2, cv2.LINE_AA)
        ly = top + 15 + 16 * k
        cv2.line(canvas, (w - right + 8, ly - 4), (w - right + 28, ly - 4), colour, 2)
        _text(canvas, label[:16], (w - right + 32, ly))
    return canvas.astype(np.float64) / 255.0


__all__ = ["image_grid", "line_chart", "log_spectrum", "to_display"]
