"""The spectral noise operator ``T_w = F⁻¹ diag(w) F`` (DESIGN.md §3).

Shaped noise is ``ε_w = irfft2(w · rfft2(ξ))`` with orthonormal transforms and ``ξ ~ N(0, I)``:
exact, real and Gaussian with covariance ``Σ_w = F⁻¹ diag(w²) F``. For white noise the operator is
skipped entirely so that, with the same generator, the draws equal those of a standard DDPM.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sagd_core.spectral.masks import band_mask
from sagd_core.spectral.weights import NoiseSpec, noise_weights

#: Relative cutoff of the pseudo-inverse in :meth:`SpectralNoise.eps_to_score` (numpy's
#: ``pinv`` uses 1e-15 for float64; a float32 score needs the inverse to stay finite).
PINV_RCOND = 1e-12


def _filter(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    spec = torch.fft.rfft2(x, norm="ortho")
    return torch.fft.irfft2(spec * weights, s=(h, w), norm="ortho")


class SpectralNoise:
    """Shaped Gaussian noise for one image size; weights precomputed on the device."""

    def __init__(
        self,
        spec: NoiseSpec,
        height: int,
        width: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.spec = spec
        self.height = height
        self.width = width
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.weights = torch.as_tensor(noise_weights(spec, height, width), dtype=dtype).to(
            self.device
        )
        self.trusted: torch.Tensor | None = None
        if spec.omit is not None:
            trusted = 1.0 - band_mask(spec.omit, height, width)
            self.trusted = torch.as_tensor(trusted, dtype=dtype).to(self.device)

    @classmethod
    def white(cls, height: int, width: int, **kwargs: object) -> SpectralNoise:
        return cls(NoiseSpec(), height, width, **kwargs)  # type: ignore[arg-type]

    @property
    def is_white(self) -> bool:
        return self.spec.is_white

    def _check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[-2:]) != (self.height, self.width):
            raise ValueError(
                f"tensor of spatial size {tuple(x.shape[-2:])} given to a noise operator built "
                f"for {self.height}×{self.width}"
            )

    def sample(
        self, shape: Sequence[int], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``ε_w`` of ``shape`` (…, H, W) from ``generator`` (never the global RNG state
        when a generator is given)."""
        xi = torch.randn(tuple(shape), generator=generator, device=self.device, dtype=self.dtype)
        self._check(xi)
        if self.is_white:
            return xi
        eps = self.apply(xi)
        if self.spec.normalization == "per_sample_std":
            # P1's reproduction flag: divide each sample by its own spatial std (non-Gaussian).
            eps = eps / eps.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        return eps

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``T_w x``."""
        self._check(x)
        return _filter(x, self.weights.to(x.dtype))

    def project_trusted(self, x: torch.Tensor) -> torch.Tensor:
        """``P x = F⁻¹ diag(1 − M_omit) F x``; the identity for models without omission."""
        self._check(x)
        if self.trusted is None:
            return x
        return _filter(x, self.trusted.to(x.dtype))

    def power_spectrum(self) -> torch.Tensor:
        """``w²`` on the half grid: the eigenvalues of ``Σ_w``."""
        return self.weights**2

    def eps_to_score(self, eps: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """Score ``∇ log q_t = −Σ_w⁺ ε / σ`` with ``σ = √(1−ᾱ_t)``; pseudo-inverse where w = 0.

        As in ``numpy.linalg.pinv``, powers below ``PINV_RCOND`` times the largest count as zero:
        the inverse of a subnormal ``w²`` overflows (float32: ``1/w² = inf``, then ``inf · 0 =
        NaN``). The inverse is formed in float64 and cast to ``eps``'s dtype."""
        self._check(eps)
        w2 = self.power_spectrum().to(torch.float64)
        cutoff = PINV_RCOND * float(w2.max()) if w2.numel() else 0.0
        keep = w2 > cutoff
        inv = torch.where(keep, 1.0 / torch.where(keep, w2, torch.ones_like(w2)), 0.0)
        return -_filter(eps, inv.to(eps.dtype)) / sigma
