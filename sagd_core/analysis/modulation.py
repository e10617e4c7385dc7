"""Peaks that a multiplicative screen makes out of the image's own content (``sagd analyze``,
DESIGN.md §2).

A screen multiplies the image: ``x · (1 + m s)``. In the spectrum every peak ``q`` of the
screen carries a copy of the image's own spectrum around it, scaled so that the copy's value
at ``q + d`` stands to the peak as the image's power at ``d`` stands to its power at DC:
``P(q + d) / P(q) = P(d) / P(0)`` (the spectrum of the unit-range image, mean included). A
photo with periodic content of its own (brick courses, a fence, a tiled floor) therefore puts
narrow peaks beside every screen peak, at the screen frequency plus the content's frequency;
they are the image, moved, not interference, and they crowd the true peaks out of the region
list. A peak ``p`` is such a copy when some stronger peak ``q`` predicts it: its power is at
most :data:`SLACK_DB` above ``P(q) · P(d) / P(0)`` with ``d = p ∓ q`` (wrapped into the grid).

Screen peaks themselves are not copies of one another: a harmonic or a cross term of the screen
(``2f₁``, ``f₁ ± f₂``) stands far above what the copy of the screen's own (weak) peak at
``d = f₁`` or ``f₂`` predicts, and additive interference at ``p`` is independent of the
image's power at ``p − q`` (tens of dB under its DC).
"""

from __future__ import annotations

import numpy as np

from sagd_core.analysis.regions import DetectedRegion, db_to_log

#: How far (dB) above the predicted copy a peak may stand and still be one: scalloping of
#: off-grid peaks (Hann: up to 1.4 dB per axis) and the image's own power beside the copy.
SLACK_DB = 3.0


def unit_log_power(chw: np.ndarray) -> np.ndarray:
    """Log periodogram (Hann window, channels averaged) of the unit-range image, ``chw`` in
    the model range ``[-1, 1]``, *with* its mean: the DC holds the image's brightness."""
    _c, h, w = chw.shape
    unit = (chw.astype(np.float64) + 1.0) / 2.0
    window = np.hanning(h + 2)[1:-1, None] * np.hanning(w + 2)[None, 1:-1]
    window /= np.sqrt(np.mean(window**2))
    power = (np.abs(np.fft.fft2(unit * window, norm="ortho")) ** 2).mean(axis=0)
    return np.asarray(np.log(power + 1e-300))


def _top(log_power: np.ndarray, fy: float, fx: float) -> float:
    """The largest log power within one bin of ``(fy, fx)`` (wrapped)."""
    h, w = log_power.shape
    iy, ix = round(fy * h), round(fx * w)
    rows, cols = np.arange(iy - 1, iy + 2) % h, np.arange(ix - 1, ix + 2) % w
    return float(log_power[np.ix_(rows, cols)].max())


def _wrap(f: float) -> float:
    return (f + 0.5) % 1.0 - 0.5


def without_image_copies(peaks: list[DetectedRegion], chw: np.ndarray) -> list[DetectedRegion]:
    """The peaks that no stronger peak predicts as a copy of the image's own spectrum (module
    docstring)."""
    if len(peaks) < 2:
        return peaks
    logp = unit_log_power(chw)
    dc = float(logp[0, 0])
    slack = db_to_log(SLACK_DB)
    level = [_top(logp, p.region["fy"], p.region["fx"]) for p in peaks]
    kept = []
    for i, p in enumerate(peaks):
        py, px = p.region["fy"], p.region["fx"]
        copy = False
        for j, q in enumerate(peaks):
            if j == i or level[j] <= level[i]:
                continue
            qy, qx = q.region["fy"], q.region["fx"]
            for sign in (1.0, -1.0):
                d = _top(logp, _wrap(py - sign * qy), _wrap(px - sign * qx))
                if level[i] <= level[j] + d - dc + slack:
                    copy = True
                    break
            if copy:
                break
        if not copy:
            kept.append(p)
    return kept


__all__ = ["SLACK_DB", "unit_log_power", "without_image_copies"]
