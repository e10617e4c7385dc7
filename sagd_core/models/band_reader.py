"""The band reader: one network call from an image with Gaussian noise in a known band (plus,
optionally, white noise) to the clean posterior mean, for **any** band (DESIGN.md §4.3, last
point, with the band given as input instead of fixed at training).

It is the one-call read of a clean-data model whose forward noise is shaped like the band: for
``y = x + n``, ``n = F⁻¹(M · F(s_b ε)) + σ_w ε'`` (``M`` the band's hard mask, ``s_b`` the std of
white noise whose band part the corruption is, ``σ_w`` broadband noise, ``ε, ε'`` white), the
network returns ``E[x | y]`` directly (x-prediction). Unlike a diffusion model it is trained only
at the levels the read takes (the corruption's own), so it does not sample; it is trained on
clean patches of the TRAIN split under random bands and levels
(:mod:`sagd_core.bench.default_read`).

**Inputs.** Per image channel (a gray model; colour images go channel by channel): the part of
``y`` outside the band ``y_o = y − P_M y`` (exactly the clean image there when ``σ_w = 0``) and the
band part ``P_M y``, where ``P_M`` is the orthonormal-FFT projection on the band; the two levels
enter as a code in place of the U-Net's time (:meth:`UNet.forward_embedded`), since a constant
input map would be normalised away by GroupNorm.

**Output.** Three maps: ``c`` and ``g`` for the band, ``r`` for the white noise outside it:
``x̂ = (y_o − P_⊥ r) + P_M(σ(g) · P_M y + c)`` (``P_⊥ = 1 − P_M``, ``σ`` the logistic gate),
with ``r`` dropped when ``σ_w = 0``: then the bands outside ``M`` come back exactly as observed,
as for every band method. The gate lets the network pass the band through where the noise is
weak and drop it where the band holds little signal under strong noise (smooth photos): each
extreme is one map near a constant, not a precise copy or cancellation of the input.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.torch import load_file
from torch import Tensor, nn

from sagd_core.models.presets import UNetConfig
from sagd_core.models.unet import UNet, timestep_embedding

__all__ = [
    "BandReader",
    "BandReaderConfig",
    "band_part",
    "level_code",
    "load_band_reader",
]

#: Level codes: ``(ln level + OFFSET) · SCALE`` puts levels 0.007-2 (model range) on 0-1000, the
#: range of the U-Net's time embedding; a white level of exactly 0 has code 0 (no white noise).
#: (White levels 0.005-0.0067, in the trained range, get codes −45 to 0, next to "none": an
#: offset of 6 would separate them; changing it needs a retrain.)
CODE_OFFSET = 5.0
CODE_SCALE = 150.0


class BandReaderConfig(BaseModel):
    """The reader's network (``unet``: 2 inputs, 3 outputs) and the levels it was trained on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(default="band_reader", pattern="^band_reader$")
    unet: UNetConfig
    #: The band levels ``s_b`` and white levels ``σ_w`` (model range) seen in training.
    band_std_range: tuple[float, float]
    white_std_range: tuple[float, float]

    @model_validator(mode="after")
    def _ordered_positive_ranges(self) -> BandReaderConfig:
        for name in ("band_std_range", "white_std_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low ≤ high, got ({lo}, {hi})")
        return self


def band_part(y: Tensor, mask: Tensor) -> Tensor:
    """``P_M y`` for ``y`` ``(B, C, H, W)`` and a full-grid, conjugate-symmetric mask
    ``(H, W)`` or ``(B, 1, H, W)`` (a real image in, a real image out, in ``y``'s precision)."""
    spectrum = torch.fft.fft2(y, norm="ortho")
    return torch.fft.ifft2(spectrum * mask.to(y.dtype), norm="ortho").real


def level_code(level: Tensor) -> Tensor:
    """The embedding time of a noise level (0 for exactly 0)."""
    safe = torch.clamp(level, min=1e-6)
    return torch.where(level > 0, (torch.log(safe) + CODE_OFFSET) * CODE_SCALE, 0.0)


class BandReader(nn.Module):
    """``forward(y, mask, band_std, white_std) -> x̂`` (module docstring); ``y`` ``(B, 1, H,
    W)``, ``mask`` ``(H, W)`` or ``(B, 1, H, W)``, the levels ``(B,)``."""

    def __init__(self, config: BandReaderConfig) -> None:
        super().__init__()
        if config.unet.in_channels != 2 or config.unet.resolved_out_channels != 3:
            raise ValueError("a band reader's U-Net takes 2 channels and gives 3")
        self.config = config
        self.unet = UNet(config.unet)

    def code(self, band_std: Tensor, white_std: Tensor) -> Tensor:
        half = self.unet.time_embed_dim // 2
        rest = self.unet.time_embed_dim - half
        return torch.cat(
            [
                timestep_embedding(level_code(band_std), half),
                timestep_embedding(level_code(white_std), rest),
            ],
            dim=1,
        )

    def trained_levels(self, band_std: Tensor, white_std: Tensor) -> tuple[Tensor, Tensor]:
        """The levels clamped into the ranges seen in training (a white level of 0 stays 0):
        the network is not asked to extrapolate; the guard judges the result."""
        lo, hi = self.config.band_std_range
        wlo, whi = self.config.white_std_range
        white = torch.where(white_std > 0, white_std.clamp(wlo, whi), white_std)
        return band_std.clamp(lo, hi), white

    def forward(self, y: Tensor, mask: Tensor, band_std: Tensor, white_std: Tensor) -> Tensor:
        if y.ndim != 4 or y.shape[1] != 1:
            raise ValueError(f"y must have shape (B, 1, H, W), got {tuple(y.shape)}")
        net_in, inside = self.inputs(y, mask)
        code = self.code(band_std.reshape(-1), white_std.reshape(-1)).to(y.dtype)
        out = self.unet.forward_embedded(net_in, code)
        return self.combine(y, inside, out, mask, white_std)

    def inputs(self, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The U-Net's input ``(B, 2, H, W)`` and the band part ``P_M y`` (what ``combine``
        needs): the projections are taken on the whole image, the U-Net may then be tiled."""
        inside = band_part(y, mask)
        return torch.cat([y - inside, inside], dim=1), inside

    def combine(
        self, y: Tensor, inside: Tensor, out: Tensor, mask: Tensor, white_std: Tensor
    ) -> Tensor:
        """``x̂`` from the U-Net's two output maps (module docstring)."""
        content, gate, noise = out[:, :1], out[:, 1:2], out[:, 2:]
        white = (white_std.reshape(-1, 1, 1, 1) > 0).to(y.dtype)
        outside_noise = noise - band_part(noise, mask)
        band = band_part(torch.sigmoid(gate) * inside + content, mask)
        return y - inside - white * outside_noise + band


def load_band_reader(directory: Path) -> BandReader:
    """The reader in ``directory`` (``config.json`` validated, weights only from
    ``ema.safetensors``: no pickle), in eval mode."""
    config = BandReaderConfig.model_validate(json.loads((directory / "config.json").read_text()))
    model = BandReader(config)
    model.load_state_dict(load_file(directory / "ema.safetensors"))
    return model.eval()
