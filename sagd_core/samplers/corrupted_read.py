"""One network call from a corrupted-data model to the clean posterior mean (DESIGN.md §4.3, last
point): the model was trained on corrupted images with forward noise shaped like the corruption.

**Setting.** Images ``y = x + c`` with a Gaussian corruption of the forward noise's shape,
``c ~ N(0, s² Σ_w)``, independent of the clean ``x`` (band-limited noise and a band model:
``w = M``, flat in the band). Weights are normalised to unit pixel variance (``mean w² = 1``), so
``s`` is the corruption's pixel std and ``s²`` its variance in units of the forward noise.

**Level mapping.** The corrupted-data forward sample is
``y_t = √ᾱ y + √(1−ᾱ) ε_w = √ᾱ x + n_t`` with ``n_t ~ N(0, (ᾱ s² + 1 − ᾱ) Σ_w)``. Put
``ᾱ' = ᾱ / (1 + ᾱ s²)`` (:func:`clean_alpha_bar`): then ``√(ᾱ'/ᾱ) y_t = √ᾱ' x + ν`` with
``Var ν = (ᾱ'/ᾱ)(ᾱ s² + 1 − ᾱ) Σ_w = ᾱ' (s² + 1/ᾱ − 1) Σ_w = (1 − ᾱ') Σ_w``: exactly the *clean*
forward sample at level ``ᾱ'``. The corrupted-data model at ``ᾱ`` is the clean-data model at
``ᾱ'``, for every ``ᾱ' < 1 / (1 + s²)`` — every level noisier than the corruption, and only those
(its noise-to-signal ratio is ``s² + (1−ᾱ)/ᾱ``).

**Clean read.** ``√(1−ᾱ) ε_w`` and ``√ᾱ c`` are independent Gaussians of the same shape ``Σ_w``,
so ``E[√(1−ᾱ) ε_w | n_t] = ρ n_t`` with ``ρ = (1−ᾱ) / (ᾱ s² + 1 − ᾱ)`` (:func:`noise_share`);
``x`` is independent of both, so by the tower rule the optimal predictor satisfies
``√(1−ᾱ) ε̂ = ρ E[n_t | y_t]`` and ``E[x | y_t] = (y_t − √(1−ᾱ) ε̂ / ρ) / √ᾱ``
(:func:`clean_from_eps`): the clean posterior mean from the whole of ``y_t``, band included.

**The observation itself.** :func:`clean_read` calls the model at ``z = √ᾱ y`` — no fresh noise —
and reads it as above. As ``ᾱ → 1`` this is ``E[x | y]`` (Tweedie at the corruption level:
``y + s² Σ_w ∇ log p_y(y)``). At ``ᾱ < 1`` the model believes ``z`` carries noise
``(ᾱ s² + 1 − ᾱ) Σ_w`` where it carries ``ᾱ s² Σ_w``; for Gaussian data the read is then exactly
the Wiener filter for corruption level ``s² + (1−ᾱ)/ᾱ`` applied to ``y``, whose MSE exceeds that
of ``E[x | y]`` only to second order in ``(1−ᾱ)/ᾱ``. (Adding fresh noise instead gives the exact
``E[x | y_t]``, which loses information to first order.) Where to read: :func:`read_time` picks
the largest training time with ``(1−ᾱ)/ᾱ ≤ κ s²``; a network's ε error is amplified there by
``√(1−ᾱ) / (ρ √ᾱ) = (ᾱ s² + 1 − ᾱ) / √(ᾱ (1−ᾱ)) ≈ s / √κ``, so larger times are gentler on a
network and ``t = 0`` is best for an exact denoiser. Choose κ on held-out corrupted images.

Anchors: Noise2Score (Kim & Ye 2021), Consistent Diffusion Meets Tweedie (Daras et al. 2024),
Ambient Diffusion (Daras et al. 2023) — all isotropic; the anisotropic case is ours.
"""

from __future__ import annotations

import math

import torch

from sagd_core.diffusion import EpsModel
from sagd_core.schedules import Schedule
from sagd_core.spectral.operator import SpectralNoise

#: Default κ of :func:`read_time`: read where the model's own noise is 30% of the corruption's.
#: The exact denoiser loses about 0.05 dB there (second order); small band models trained on
#: corrupted Gaussian images were best at κ = 0.3 among 0.03…3 (issue #18 report). Calibrate
#: per model and size with :mod:`sagd_core.calibration.one_call_read`.
READ_EXCESS = 0.3


def _check_corruption(corruption_var: float) -> None:
    if not (math.isfinite(corruption_var) and corruption_var > 0.0):
        raise ValueError(f"corruption variance must be a positive number, got {corruption_var}")


def clean_alpha_bar(alpha_bar: float, corruption_var: float) -> float:
    """``ᾱ' = ᾱ / (1 + ᾱ s²)``: the clean-data level of the corrupted-data model at ``ᾱ``."""
    _check_corruption(corruption_var)
    return alpha_bar / (1.0 + alpha_bar * corruption_var)


def input_scale(alpha_bar: float, corruption_var: float) -> float:
    """``√(ᾱ'/ᾱ)``: multiplies ``y_t`` into a clean forward sample at ``ᾱ'``."""
    return math.sqrt(clean_alpha_bar(alpha_bar, corruption_var) / alpha_bar)


def noise_share(alpha_bar: float, corruption_var: float) -> float:
    """``ρ = (1−ᾱ) / (ᾱ s² + 1 − ᾱ)``: the forward noise's share of the noise in ``y_t``."""
    _check_corruption(corruption_var)
    return (1.0 - alpha_bar) / (alpha_bar * corruption_var + 1.0 - alpha_bar)


def clean_from_eps(
    x_t: torch.Tensor, eps: torch.Tensor, alpha_bar: float, corruption_var: float
) -> torch.Tensor:
    """``E[x | y_t] = (y_t − √(1−ᾱ) ε̂ / ρ) / √ᾱ`` from a corrupted-data model's ``ε̂``."""
    rho = noise_share(alpha_bar, corruption_var)
    return (x_t - math.sqrt(1.0 - alpha_bar) / rho * eps) / math.sqrt(alpha_bar)


def read_time(
    schedule: Schedule, corruption_var: float, excess: float = READ_EXCESS
) -> tuple[int, bool]:
    """The largest training time whose ``(1−ᾱ)/ᾱ ≤ excess · s²``, and whether one exists (else
    ``t = 0``, whose level is already above that: the corruption is too weak for the schedule)."""
    _check_corruption(corruption_var)
    if not excess > 0.0:
        raise ValueError(f"excess must be positive, got {excess}")
    first_above, _ = schedule.first_time_at(excess * corruption_var)
    a = float(schedule.alpha_bars[first_above])
    if (1.0 - a) / a <= excess * corruption_var:  # the last time, or an exact hit
        return first_above, True
    return max(first_above - 1, 0), first_above > 0


def _on_support(eps: torch.Tensor, noise_op: SpectralNoise) -> torch.Tensor:
    """``ε̂`` restricted to the bins where ``w > 0`` (the optimal ε lives there; a network's
    output elsewhere would leak into the trusted bands)."""
    if noise_op.is_white:
        return eps
    h, w = eps.shape[-2:]
    support = (noise_op.weights > 0).to(torch.float64)
    spec = torch.fft.rfft2(eps.to(torch.float64), norm="ortho") * support
    return torch.fft.irfft2(spec, s=(h, w), norm="ortho").to(eps.dtype)


@torch.no_grad()
def clean_read(
    eps_model: EpsModel,
    y: torch.Tensor,
    schedule: Schedule,
    noise_op: SpectralNoise,
    t: int,
    corruption_var: float,
) -> torch.Tensor:
    """The clean posterior mean of ``y`` ``(B, C, H, W)`` in one call of a corrupted-data model
    at training time ``t`` (module docstring, "The observation itself")."""
    a = float(schedule.alpha_bars[t])
    z = math.sqrt(a) * y
    times = torch.full((y.shape[0],), float(t), dtype=y.dtype, device=y.device)
    eps = _on_support(eps_model(z, times), noise_op).to(y.dtype)
    return clean_from_eps(z, eps, a, corruption_var)


__all__ = [
    "READ_EXCESS",
    "clean_alpha_bar",
    "clean_from_eps",
    "clean_read",
    "input_scale",
    "noise_share",
    "read_time",
]
