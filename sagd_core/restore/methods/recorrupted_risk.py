"""Per-region errors of band estimators on the image itself, by recorruption (R2R).

For ``y = x + n`` with ``n ~ N(0, Σ)`` stationary (here the band's measured noise power per
region and channel) and an independent ``z ~ N(0, Σ)``, the pair ``y₁ = y + α z`` and
``y₂ = y − z / α`` carry independent noises (their cross-covariance is ``Σ − Σ = 0``), so for
any estimator ``f``, smooth or not,

``E‖P_r(f(y₁) − y₂)‖² = E‖P_r(f(y₁) − x)‖² + (1 + 1/α²) tr(P_r Σ)``:

the error of ``f`` at the slightly higher noise ``(1 + α²) Σ`` in the bins ``P_r`` of region
``r``, up to a constant that is the same for every estimator (Pang et al., "Recorrupted-to-
Recorrupted", CVPR 2021, use the identity to train; here it compares two estimators). Each
estimate is measured on the image's own size and content, which a probe image
(:func:`classical.guard.scaled_probe`, a decimated copy) is not: at 256² a band model's read
won by 2.3–3.1 dB on the image while losing on its half-scale probe (issue #18, session 9).

Stein's unbiased risk estimate (:mod:`classical.sure_blend`) would need no second image, but
its divergence term assumes an estimator differentiable in ``y``; the classical tier's data-driven
choices are not, and on stationary Gaussian images SURE put its error 37% below the truth while
the read's was within 1% (session 10), so it would have favoured the classical tier wrongly.
Two estimators run on the same draws share the draws' sampling error: their difference is what
is compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sagd_core.spectral.fft import irfft2, rfft2
from sagd_core.spectral.grid import half_grid_multiplicity

#: The recorruption's split ``α``: the errors are those at noise ``(1 + α²) Σ``.
ALPHA = 0.5
#: Independent draws averaged.
DRAWS = 2
_SEED = 20261207


@dataclass(frozen=True)
class Recorrupted:
    """The pairs ``(y₁, y₂)`` of :func:`recorrupt` and what the errors are measured on:
    regions ``(h, w//2+1)`` 0/1 on the half grid, each region's noise trace
    ``(1 + 1/α²) tr(P_r Σ)``, the noise power ``Σ`` ``(C, h, w//2+1)`` and ``α``."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    regions: list[np.ndarray]
    offsets: list[float]
    power: np.ndarray
    alpha: float


def recorrupt(
    y: np.ndarray,
    regions: list[np.ndarray],
    levels: Sequence[Sequence[float]],
    alpha: float = ALPHA,
    draws: int = DRAWS,
) -> Recorrupted:
    """``draws`` recorrupted pairs of ``y`` ``(C, H, W)`` for noise of power ``levels[i]`` per
    bin and channel in ``regions[i]`` (where regions overlap, the larger), from a fixed seed."""
    c, h, w = y.shape
    power = np.zeros((c, h, w // 2 + 1))
    for region, level in zip(regions, levels, strict=True):
        power = np.maximum(power, np.asarray(level, np.float64)[:, None, None] * region)
    rng = np.random.default_rng(_SEED)
    inputs, targets = [], []
    for _ in range(draws):
        z = irfft2(rfft2(rng.standard_normal((c, h, w))) * np.sqrt(power), h, w)
        inputs.append(y + alpha * z)
        targets.append(y - z / alpha)
    mult = half_grid_multiplicity(h, w)
    scale = 1.0 + 1.0 / alpha**2
    offsets = [scale * float((power * mult * region).sum()) for region in regions]
    return Recorrupted(inputs, targets, regions, offsets, power, alpha)


def region_errors(pairs: Recorrupted, estimator: Callable[[np.ndarray], np.ndarray]) -> list[float]:
    """The estimated squared error of ``estimator`` per region (module docstring), averaged
    over the draws: one call of ``estimator`` per draw."""
    return compare(pairs, estimator, None).errors[0]


@dataclass(frozen=True)
class Comparison:
    """Two estimators on the same recorrupted pairs: each one's estimated error per region, and
    the standard deviation of the estimated difference (first − second) per region."""

    errors: tuple[list[float], list[float]]
    spread: list[float]


def compare(
    pairs: Recorrupted,
    first: Callable[[np.ndarray], np.ndarray],
    second: Callable[[np.ndarray], np.ndarray] | None,
) -> Comparison:
    """Both estimators on every draw (``second`` may be None: then only the first's errors).

    **How sure the difference is.** The estimated difference of the two errors contains the
    term ``−2⟨d, y₂ − x⟩`` with ``d = first(y₁) − second(y₁)``; over the noises it has variance
    ``4 (1 + 1/α²) dᵀ P_r Σ d``, known from ``d`` and the measured ``Σ``: the spread returned,
    the scale of the estimate's error on one image (two estimators that differ much are compared
    with more noise than two that nearly agree). It is a scale, not a bound: on one image the
    noise ``n`` is a single draw, ``Σ`` is measured, and the errors are those at
    ``(1 + α²) Σ`` (the guard's margin, ``learned_guard.MARGIN``, allows for this)."""
    h, w = pairs.inputs[0].shape[-2:]
    mult = half_grid_multiplicity(h, w)
    scale = 4.0 * (1.0 + 1.0 / pairs.alpha**2)
    shape = pairs.regions[0].shape
    power = [np.zeros(shape), np.zeros(shape)]
    variance = np.zeros(len(pairs.regions))
    for y1, y2 in zip(pairs.inputs, pairs.targets, strict=True):
        outputs = [first(y1)] + ([] if second is None else [second(y1)])
        for k, out in enumerate(outputs):
            diff = rfft2(out - y2)
            power[k] = power[k] + ((diff.real**2 + diff.imag**2) * mult).sum(axis=0)
        if second is not None:
            d = rfft2(outputs[0] - outputs[1])
            weighted = ((d.real**2 + d.imag**2) * pairs.power * mult).sum(axis=0)
            variance = variance + scale * np.array([(weighted * r).sum() for r in pairs.regions])
    n = len(pairs.inputs)
    first_errors, second_errors = (
        [
            float((p / n * region).sum()) - offset
            for region, offset in zip(pairs.regions, pairs.offsets, strict=True)
        ]
        for p in power
    )
    return Comparison(
        errors=(first_errors, second_errors), spread=[float(v) for v in np.sqrt(variance) / n]
    )


__all__ = ["ALPHA", "DRAWS", "Comparison", "Recorrupted", "compare", "recorrupt", "region_errors"]
