"""Periodic interference as a few numbers: sinusoids found in the band, fitted, subtracted.

For every sinusoid region the strongest peak of the windowed spectrum (2-D Hann window, power
summed over channels) gives a coarse frequency; a zoom search on the continuous frequency plane
(the windowed DTFT evaluated on ever finer 9×9 grids by two small matrix products) refines it far
below one DFT bin. Amplitude and phase per channel come from one weighted least-squares fit of
all found sinusoids together (weights: the same window, which keeps the image's strong low
frequencies out of the fit). A region gets further components while its residual still shows a
peak well above the surrounding spectrum.

An off-grid sinusoid leaks into every DFT bin, so subtracting the fitted signal removes the
interference where a notch cannot (it only deletes its own disk), and leaves the image's own
content at those frequencies in place. A screen that multiplies the image (halftone, moiré)
is divided out instead (:mod:`~.demodulate`), when that leaves clearly less power outside the
band than the subtraction (``MODULATED_GAIN``).

The windowed fit's error is the image's own content at the lines' frequencies: its projection
on the carriers biases both the frequency (the DTFT peak moves, 0.01-0.03 bins on sharp-edged
scenes) and the amplitude. On dead-leaves scenes (training split, 256²) the true frequencies
alone gave +2 to +11 dB over the estimated ones. So the subtraction's final fit
(:func:`_robust_fit`) is made where that content is sparse: on the discrete Laplacian of the
image, which maps a line to itself times a known real factor ``λ(f)`` and a piecewise smooth
image to its edges. There, iteratively reweighted least squares (Cauchy weights on the residual,
scale from its median absolute value) fits the amplitudes per channel and, by Gauss-Newton steps
on the same weighted objective, the frequencies shared by all channels; the edges get weights
near zero, a textured photo's residual sets a broad scale and the fit stays close to plain least
squares. Measured with ``sagd bench real --split train`` (periodic, σ = 0): the dead-leaves
scenes, flat discs with linear shading and so zero Laplacian off their edges, are recovered to
rounding error (gain over the notch +17 to +29 dB before, ~+120 dB after); photos gain +8.4 dB
(256²) and +10.1 dB (512²), none less than +0.3 dB; halftone σ = 0 +0.3 to +4.9 dB; with
σ = 0.02 within ±0.2 dB (512² RGB dead leaves −0.10: the sub-grid's fewer samples).
A line too low for the Laplacian to see (``|λ| < MIN_LAPLACIAN``)
or a refinement that moves a frequency by more than ``MAX_SHIFT_BINS`` keeps the windowed fit.
The refinement reads at most ``ROBUST_SAMPLES`` Laplacian samples (a sub-grid on large images:
512² RGB takes every 3rd row and column), ~0.04 s there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sagd_core.restore.methods.classical.demodulate import demodulate, line_factors, line_terms
from sagd_core.spectral.grid import full_from_half

#: Zoom search: points per axis and refinement passes (final step ≈ 0.25 / 4⁵ bins).
_ZOOM_POINTS = 9
_ZOOM_PASSES = 6
#: A residual peak this many times the local background power is another component.
EXTRA_PEAK_RATIO = 30.0
#: Below this ratio the first component is reported as weak (it may be image content).
WEAK_PEAK_RATIO = 8.0
MAX_COMPONENTS_PER_REGION = 3
#: The division (:mod:`~.demodulate`) is kept when the image it leaves holds at most this share
#: of the subtraction's power outside the band: it has twice the parameters and must earn them.
#: On the training scenes a 15 % screen gave 0.972-0.995, additive lines 0.9992-1.0001 (there
#: the division's own fitting noise cost up to 0.05 dB).
MODULATED_GAIN = 0.998
#: Reweighting passes of :func:`_robust_fit` (each: amplitudes, weights, one Gauss-Newton step
#: on the frequencies) and the Cauchy weight's scale in units of the residual's robust sigma.
ROBUST_PASSES = 8
ROBUST_SCALE = 3.0
#: Samples (all channels) the refinement uses at most: larger images are read on a sub-grid.
ROBUST_SAMPLES = 2**16
#: :func:`_robust_fit` needs lines the Laplacian keeps (|λ(f)| ≈ (2π|f|)², so |f| ≳ 0.05).
MIN_LAPLACIAN = 0.1
#: A robust frequency further than this (DFT bins) from the windowed one is not trusted.
MAX_SHIFT_BINS = 0.5
#: Background ring around a peak, in DFT bins.
_RING = (3.0, 8.0)


@dataclass
class Component:
    """One fitted sinusoid: frequency (cycles/pixel), per-channel amplitude and phase."""

    region: int
    fy: float
    fx: float
    peak_ratio: float
    amplitude: list[float] = field(default_factory=list)
    phase: list[float] = field(default_factory=list)
    dropped: bool = False  # its region failed the residual check without a clear line
    modulated: bool = False  # fitted with the multiplicative (content-following) columns
    sideband: bool = False  # an extra line of a modulated fit: the envelope explains it

    def describe(self) -> dict[str, object]:
        return {
            "region": self.region,
            "fy": self.fy,
            "fx": self.fx,
            "peak_to_background": self.peak_ratio,
            "amplitude": self.amplitude,
            "phase": self.phase,
            "modulated": self.modulated,
            "sideband": self.sideband,
            "dropped": self.dropped,
        }


def hann2d(height: int, width: int) -> np.ndarray:
    """Separable periodic-free Hann window (zero at the borders)."""
    return np.outer(np.hanning(height), np.hanning(width))


def _windowed_dtft_power(zw: np.ndarray, fys: np.ndarray, fxs: np.ndarray) -> np.ndarray:
    """``Σ_c |Σ_n zw_c[n] e^{-2πi f·n}|²`` on the grid ``fys × fxs`` (``zw``: (C, H, W), real):
    the row transform as two real products (cos, sin), then a small complex one."""
    h, w = zw.shape[-2:]
    phase_y = 2.0 * np.pi * np.outer(fys, np.arange(h))
    rows = np.cos(phase_y)[None] @ zw - 1j * (np.sin(phase_y)[None] @ zw)
    ex = np.exp(-2j * np.pi * np.outer(np.arange(w), fxs))
    values = rows @ ex[None]
    return np.sum(values.real**2 + values.imag**2, axis=0)


def refine_frequency(zw: np.ndarray, fy: float, fx: float) -> tuple[float, float]:
    """Zoom from a DFT-bin peak ``(fy, fx)`` to the maximum of the windowed DTFT power."""
    h, w = zw.shape[-2:]
    step_y, step_x = 0.25 / h, 0.25 / w
    offsets = np.arange(_ZOOM_POINTS) - _ZOOM_POINTS // 2
    for _ in range(_ZOOM_PASSES):
        fys, fxs = fy + offsets * step_y, fx + offsets * step_x
        power = _windowed_dtft_power(zw, fys, fxs)
        iy, ix = np.unravel_index(int(np.argmax(power)), power.shape)
        fy, fx = float(fys[iy]), float(fxs[ix])
        step_y, step_x = step_y / 4.0, step_x / 4.0
    return fy, fx


def _periodic_bin_distance(height: int, width: int, fy: float, fx: float) -> np.ndarray:
    """Distance in DFT bins from every full-grid bin to ``±(fy, fx)`` (periodic)."""
    ky = np.fft.fftfreq(height)[:, None]
    kx = np.fft.fftfreq(width)[None, :]

    def dist(cy: float, cx: float) -> np.ndarray:
        dy = ((ky - cy + 0.5) % 1.0 - 0.5) * height
        dx = ((kx - cx + 0.5) % 1.0 - 0.5) * width
        return np.sqrt(dy**2 + dx**2)

    return np.minimum(dist(fy, fx), dist(-fy, -fx))


def _peak(
    power: np.ndarray, region: np.ndarray, band: np.ndarray
) -> tuple[float, float, float] | None:
    """The strongest bin of ``power`` inside ``region`` as ``(fy, fx, ratio)``; ``ratio``: its
    power over the mean background power in a ring around it outside the band."""
    if not region.any():
        return None
    h, w = power.shape
    masked = np.where(region, power, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(masked)), power.shape)
    fy, fx = float(np.fft.fftfreq(h)[iy]), float(np.fft.fftfreq(w)[ix])
    d = _periodic_bin_distance(h, w, fy, fx)
    ring = (d >= _RING[0]) & (d <= _RING[1]) & ~band
    if not ring.any():
        ring = ~band
    # The median of an exponential variable is ln 2 times its mean.
    background = float(np.median(power[ring])) / np.log(2.0)
    ratio = float(power[iy, ix]) / background if background > 0 else float("inf")
    return fy, fx, ratio


def windowed_power(x: np.ndarray) -> np.ndarray:
    """Power spectrum of ``x`` ``(C, H, W)`` under :func:`hann2d`, summed over channels, on
    the full grid ``(H, W)``."""
    return _power_full(x * hann2d(*x.shape[-2:]))


def _power_full(z: np.ndarray) -> np.ndarray:
    """``Σ_c |fft2(z_c)|²`` on the full grid ``(H, W)`` for real ``z`` ``(C, H, W)``: the real
    transform's half grid, spread to the other half by symmetry (``P(−f) = P(f)``)."""
    from scipy import fft  # imported on use: start-up of the other paths

    spec = fft.rfft2(z)
    return full_from_half(np.sum(spec.real**2 + spec.imag**2, axis=0), z.shape[-1])


def _carriers(height: int, width: int, freqs: list[tuple[float, float]]) -> np.ndarray:
    """``cos, sin`` per frequency, flattened over the image: ``(H·W, 2K)`` (built from 1-D
    factors: cos(a + b) = cos a cos b − sin a sin b)."""
    yy = 2.0 * np.pi * np.arange(height, dtype=np.float64)
    xx = 2.0 * np.pi * np.arange(width, dtype=np.float64)
    out = np.empty((height * width, 2 * len(freqs)))
    for k, (fy, fx) in enumerate(freqs):
        cy, sy = np.cos(fy * yy), np.sin(fy * yy)
        cx, sx = np.cos(fx * xx), np.sin(fx * xx)
        out[:, 2 * k] = (np.outer(cy, cx) - np.outer(sy, sx)).ravel()
        out[:, 2 * k + 1] = (np.outer(sy, cx) + np.outer(cy, sx)).ravel()
    return out


def _fit_additive(y: np.ndarray, freqs: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_fit` without an envelope, in separable form: a constant and ``cos/sin`` per
    frequency are sums of products of 1-D factors, and the Hann window is separable, so the
    normal equations need only ``(1+2K)``-square products of 1-D sums and two matrix products
    per channel (no ``H·W × 2K`` design matrix)."""
    c, h, w = y.shape
    wy, wx = np.hanning(h), np.hanning(w)  # hann2d(h, w) == outer(wy, wx)
    fy_, fx_ = line_factors(h, [f[0] for f in freqs]), line_factors(w, [f[1] for f in freqs])
    gy = fy_.T @ (fy_ * wy[:, None])
    gx = fx_.T @ (fx_ * wx[:, None])
    terms = line_terms(len(freqs))
    n = len(terms)
    gram = np.zeros((n, n))
    for i, ti in enumerate(terms):
        for j, tj in enumerate(terms[: i + 1]):
            v = sum(a * b * gy[ya, yb] * gx[xa, xb] for a, ya, xa in ti for b, yb, xb in tj)
            gram[i, j] = gram[j, i] = v
    gram[np.diag_indices_from(gram)] += 1e-9 * np.trace(gram) / n
    coefs = np.zeros((n - 1, c))
    fitted = np.zeros_like(y)
    for ch in range(c):
        proj = fy_.T @ (y[ch] * wy[:, None] * wx[None, :]) @ fx_
        rhs = np.array([sum(a * proj[ya, xa] for a, ya, xa in t) for t in terms])
        coef = np.linalg.solve(gram, rhs)
        coefs[:, ch] = coef[1:]
        mix = np.zeros((fy_.shape[1], fx_.shape[1]))
        for value, t in zip(coef[1:], terms[1:], strict=True):
            for a, ya, xa in t:
                mix[ya, xa] += a * value
        fitted[ch] = fy_ @ mix @ fx_.T
    return coefs, fitted


def _laplacian_gain(fy: float, fx: float) -> float:
    """The 5-point Laplacian's (real) response ``λ(f)`` to a line at ``(fy, fx)``."""
    return 2.0 * np.cos(2.0 * np.pi * fy) + 2.0 * np.cos(2.0 * np.pi * fx) - 4.0


def _robust_fit(
    centred: np.ndarray, freqs: list[tuple[float, float]]
) -> tuple[list[tuple[float, float]], np.ndarray, np.ndarray] | None:
    """Lines refit on the Laplacian of ``centred`` ``(C, H, W)`` by iteratively reweighted
    least squares, frequencies included (see the module docstring): ``(freqs, coefs (2K, C),
    fitted (C, H, W))``, or ``None`` where it does not apply (a line the Laplacian barely sees,
    an image under 8 pixels, a step that diverged)."""
    c, h, w = centred.shape
    gains = [_laplacian_gain(fy, fx) for fy, fx in freqs]
    if not freqs or min(h, w) < 8 or min(abs(g) for g in gains) < MIN_LAPLACIAN:
        return None
    # Laplacian on a sub-grid of the interior (stride ``step``): its few unknowns need far fewer
    # samples than a large image has.
    step = max(1, int(np.sqrt(c * (h - 2) * (w - 2) / ROBUST_SAMPLES)))
    mid = centred[:, 1 : h - 1 : step, 1 : w - 1 : step]
    lap = (
        centred[:, 0 : h - 2 : step, 1 : w - 1 : step]
        + centred[:, 2:h:step, 1 : w - 1 : step]
        + centred[:, 1 : h - 1 : step, 0 : w - 2 : step]
        + centred[:, 1 : h - 1 : step, 2:w:step]
        - 4.0 * mid
    ).reshape(c, -1)
    yy = np.arange(1, h - 1, step, dtype=np.float64)
    xx = np.arange(1, w - 1, step, dtype=np.float64)
    ty = 2.0 * np.pi * np.repeat(yy, len(xx))  # 2π·row of every sample (flattened)
    tx = 2.0 * np.pi * np.tile(xx, len(yy))
    k2 = 2 * len(freqs)
    start = list(freqs)
    weights = np.ones_like(lap)
    coefs = np.zeros((k2, c))

    def design(fs: list[tuple[float, float]]) -> np.ndarray:
        """``λ·cos``, ``λ·sin`` per line on the interior: ``(2K, N)``."""
        rows = []
        for fy, fx in fs:
            cy, sy = np.cos(2.0 * np.pi * fy * yy), np.sin(2.0 * np.pi * fy * yy)
            cx, sx = np.cos(2.0 * np.pi * fx * xx), np.sin(2.0 * np.pi * fx * xx)
            g = _laplacian_gain(fy, fx)
            rows.append(g * (np.outer(cy, cx) - np.outer(sy, sx)).ravel())
            rows.append(g * (np.outer(sy, cx) + np.outer(cy, sx)).ravel())
        return np.stack(rows)

    for _ in range(ROBUST_PASSES):
        a = design(freqs)
        residual = np.empty_like(lap)
        for ch in range(c):
            aw = a * weights[ch]
            gram = aw @ a.T
            gram[np.diag_indices_from(gram)] += 1e-9 * np.trace(gram) / k2
            coefs[:, ch] = np.linalg.solve(gram, aw @ lap[ch])
            residual[ch] = lap[ch] - coefs[:, ch] @ a
        scale = 1.4826 * np.median(np.abs(residual), axis=1, keepdims=True)
        u = residual / (ROBUST_SCALE * np.maximum(scale, 1e-12))
        weights = 1.0 / (1.0 + u * u)
        # One Gauss-Newton step on the frequencies (shared) with the amplitudes (per channel)
        # free: normal equations of all channels' blocks, ordered [amplitudes of each channel,
        # (dfy, dfx) per line].
        n = k2 * c + k2
        normal = np.zeros((n, n))
        rhs = np.zeros(n)
        for ch in range(c):
            deriv = []
            for k in range(len(freqs)):
                # d/dφ of λ(a cos φ + b sin φ) = λ(−a sin φ + b cos φ); φ = 2π(fy·y + fx·x)
                d = -coefs[2 * k, ch] * a[2 * k + 1] + coefs[2 * k + 1, ch] * a[2 * k]
                deriv += [d * ty, d * tx]
            j = np.concatenate([a, np.stack(deriv)])
            jw = j * weights[ch]
            block = jw @ j.T
            idx = np.r_[ch * k2 : (ch + 1) * k2, k2 * c : n]
            normal[np.ix_(idx, idx)] += block
            rhs[idx] += jw @ residual[ch]
        normal[np.diag_indices_from(normal)] += 1e-12 * np.trace(normal) / n
        delta = np.linalg.solve(normal, rhs)[k2 * c :]
        freqs = [
            (fy + float(delta[2 * k]), fx + float(delta[2 * k + 1]))
            for k, (fy, fx) in enumerate(freqs)
        ]
    for (fy, fx), (fy0, fx0) in zip(freqs, start, strict=True):
        if not (abs(fy - fy0) * h <= MAX_SHIFT_BINS and abs(fx - fx0) * w <= MAX_SHIFT_BINS):
            return None
    a = design(freqs)
    for ch in range(c):
        aw = a * weights[ch]
        gram = aw @ a.T
        gram[np.diag_indices_from(gram)] += 1e-9 * np.trace(gram) / k2
        coefs[:, ch] = np.linalg.solve(gram, aw @ lap[ch])
    # the design holds λ: ``coefs`` are already the image's cos/sin coefficients
    fitted = (_carriers(h, w, freqs) @ coefs).T.reshape(c, h, w)
    return freqs, coefs, fitted


def _fit(
    y: np.ndarray,
    window: np.ndarray,
    freqs: list[tuple[float, float]],
    envelope: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of every channel on the sinusoids.

    Columns: a constant, ``cos``/``sin`` per frequency (an additive interference) and, with an
    ``envelope`` ``(C, H, W)`` (the image without its peaks, centred), ``envelope·cos/sin``:
    an interference that multiplies the image (a halftone screen, moiré), whose amplitude
    follows the content (one pass, subtracted: the reference that :mod:`~.demodulate`'s
    division improves on; the tier itself divides). Returns the ``cos/sin`` coefficients
    ``(2K, C)`` of the additive part and the fitted interference ``(C, H, W)`` (everything but
    the constant)."""
    if envelope is None:
        return _fit_additive(y, freqs)
    c, h, w = y.shape
    carriers = _carriers(h, w, freqs)
    k2 = carriers.shape[1]
    weight = window.ravel()
    coefs = np.zeros((k2, c))
    fitted = np.zeros_like(y)
    for ch in range(c):
        cols = [np.ones((h * w, 1)), carriers, carriers * envelope[ch].ravel()[:, None]]
        a = np.concatenate(cols, axis=1)
        # Normal equations (a few columns, nearly orthogonal: well conditioned), with a tiny
        # ridge for coincident frequencies.
        wa = a * weight[:, None]
        gram = a.T @ wa
        gram[np.diag_indices_from(gram)] += 1e-9 * np.trace(gram) / gram.shape[0]
        coef = np.linalg.solve(gram, wa.T @ y[ch].ravel())
        coefs[:, ch] = coef[1 : 1 + k2]
        fitted[ch] = (a[:, 1:] @ coef[1:]).reshape(h, w)
    return coefs, fitted


def fit_sinusoids(
    y: np.ndarray,
    regions: dict[int, np.ndarray],
    band: np.ndarray,
    envelope: np.ndarray | None = None,
) -> tuple[np.ndarray, list[Component], list[str]]:
    """Find and fit the sinusoids of each region in ``y`` ``(C, H, W)``.

    ``regions`` maps a region index to its full-grid boolean mask; ``band`` is the union of every
    region (excluded from background estimates); ``envelope`` (optional, ``(C, H, W)``) adds the
    multiplicative columns of :func:`_fit`. Returns the fitted interference ``(C, H, W)``, the
    components and warnings.
    """
    _c, h, w = y.shape
    window = hann2d(h, w)
    centred = y - y.mean(axis=(1, 2), keepdims=True)
    components: list[Component] = []
    warnings: list[str] = []
    fitted = np.zeros_like(y)
    residual = centred
    for _ in range(MAX_COMPONENTS_PER_REGION):  # the search fits additive sinusoids only
        zw = residual * window
        power = _power_full(zw)
        found = False
        for index, mask in regions.items():
            have = sum(1 for comp in components if comp.region == index)
            peak = _peak(power, mask, band)
            if peak is None:
                continue
            fy, fx, ratio = peak
            if have and ratio < EXTRA_PEAK_RATIO:
                continue
            if not have and ratio < WEAK_PEAK_RATIO:
                warnings.append(
                    f"regions[{index}]: no clear peak (strongest {ratio:.1f}× the background); "
                    "the fitted sinusoid may be image content"
                )
            fy, fx = refine_frequency(zw, fy, fx)
            components.append(Component(index, fy, fx, ratio))
            found = True
        if not found:
            break
        _, fitted = _fit(y, window, [(comp.fy, comp.fx) for comp in components], None)
        residual = centred - fitted
    if components:
        fitted = interference(y, components, regions, envelope)
    return fitted, components, warnings


def interference(
    y: np.ndarray,
    components: list[Component],
    regions: dict[int, np.ndarray],
    envelope: np.ndarray | None = None,
) -> np.ndarray:
    """The joint fit of ``components`` (found by :func:`fit_sinusoids`) to ``y``: the fitted
    interference ``(C, H, W)``; sets each component's amplitude, phase, ``modulated`` and
    ``sideband``. With an ``envelope``, the screen is also divided out (:mod:`~.demodulate`)
    with the first line of each region (the additive search's further lines there are the
    screen's sidebands); the division is kept when the image it leaves holds at most
    ``MODULATED_GAIN`` of the subtraction's power outside ``regions`` (index → full-grid mask):
    a multiplicative screen spreads sidebands of the whole image spectrum there, which only the
    division removes. The interference is what the chosen estimate removed."""
    if not components:
        return np.zeros_like(y)
    h, w = y.shape[-2:]
    window = hann2d(h, w)
    centred = y - y.mean(axis=(1, 2), keepdims=True)
    freqs = [(comp.fy, comp.fx) for comp in components]
    robust = _robust_fit(centred, freqs)
    if robust is None:
        coef, fitted = _fit(y, window, freqs, None)
    else:
        freqs, coef, fitted = robust
        for comp, (fy, fx) in zip(components, freqs, strict=True):
            comp.fy, comp.fx = fy, fx
    used = components
    for comp in components:
        comp.modulated = comp.sideband = False
    if envelope is not None:
        firsts: dict[int, Component] = {}
        for comp in components:
            firsts.setdefault(comp.region, comp)
        lines = [(c.fy, c.fx) for c in firsts.values()]
        estimate, coef_mod = demodulate(y, lines, (np.hanning(h), np.hanning(w)), envelope)
        outside = ~np.logical_or.reduce(list(regions.values()))
        kept = float(windowed_power(centred - fitted)[outside].sum())
        divided = estimate - estimate.mean(axis=(1, 2), keepdims=True)
        if float(windowed_power(divided)[outside].sum()) < MODULATED_GAIN * kept:
            for comp in components:
                comp.modulated = True
                comp.sideband = firsts[comp.region] is not comp
            used, coef, fitted = list(firsts.values()), coef_mod, y - estimate
    for k, comp in enumerate(used):
        a, b = coef[2 * k], coef[2 * k + 1]
        comp.amplitude = [float(v) for v in np.hypot(a, b)]
        comp.phase = [float(v) for v in np.arctan2(-b, a)]
    for comp in components:
        if comp.sideband:
            comp.amplitude, comp.phase = [0.0] * y.shape[0], [0.0] * y.shape[0]
    return fitted


__all__ = [
    "Component",
    "fit_sinusoids",
    "hann2d",
    "interference",
    "refine_frequency",
    "windowed_power",
]
