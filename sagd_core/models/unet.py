"""Time-conditioned, fully convolutional U-Net (ADM-style) predicting ε.

The network maps ``(x_t, t)`` to a tensor of the same spatial size (ARCHITECTURE.md "models"):
it knows nothing of noise schedules; ``t`` is a float model time (any scale — the sinusoidal
embedding works for fractional times, e.g. the grids of ``Schedule.plan``). Any ``H, W ≥ 1``
works: the input is padded to a multiple of ``2**(levels - 1)`` and the output cropped back,
which is what lets restoration process arbitrary image sizes and tiles (DESIGN.md §4.5).

Inference on the CPU (no autograd) runs in the channels-last memory format (oneDNN's faster
convolutions) and applies SiLU in place (fewer fresh activation buffers). For ``cpu-tiny`` on a
256×256 RGB input, one thread: 99 → 62 ms CPU time per call, and ~24 000 → ~200 minor page
faults per call (``sagd bench latency``, ``sagd_core.bench.latency``). The arithmetic is the
same (results equal to float32 rounding); training, autograd and CUDA keep the NCHW path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sagd_core.models.presets import UNetConfig

__all__ = ["UNet", "count_parameters", "timestep_embedding"]


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``module`` (optionally only those requiring grad)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of float times ``t`` of shape ``(B,)`` → ``(B, dim)`` float32."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, + time embedding, GroupNorm → SiLU → dropout → conv, + skip."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int, num_groups: int, dropout: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(num_groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, out_ch)
        self.norm2 = nn.GroupNorm(num_groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip: nn.Module = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        inplace = not torch.is_grad_enabled()  # the norms' outputs are fresh tensors
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        h = h + self.emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h), inplace=inplace)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all pixels of one resolution, with a residual."""

    def __init__(self, channels: int, num_heads: int, num_groups: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(num_groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # (B, heads, HW, d)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Stage(nn.Module):
    """One ResBlock optionally followed by self-attention."""

    def __init__(self, res: ResBlock, attn: AttentionBlock | None) -> None:
        super().__init__()
        self.res = res
        self.attn = attn

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        x = self.res(x, emb)
        return x if self.attn is None else self.attn(x)


class UNet(nn.Module):
    """ε-prediction U-Net: ``forward(x: (B, C, H, W), t: (B,) float) -> (B, C_out, H, W)``."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        widths = cfg.level_channels
        emb_dim = 4 * cfg.base_channels
        self.time_embed_dim = cfg.base_channels
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )

        def res(i: int, o: int) -> ResBlock:
            return ResBlock(i, o, emb_dim, cfg.num_groups, cfg.dropout)

        def attn(ch: int, on: bool) -> AttentionBlock | None:
            return AttentionBlock(ch, cfg.num_heads, cfg.num_groups) if on else None

        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)

        # Encoder: every block output is kept as a skip connection (ADM layout).
        self.encoder = nn.ModuleList()
        skip_widths = [widths[0]]
        ch = widths[0]
        for level, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                self.encoder.append(
                    _Stage(res(ch, width), attn(width, level in cfg.attention_levels))
                )
                ch = width
                skip_widths.append(ch)
            if level < cfg.num_levels - 1:
                self.encoder.append(Downsample(ch))
                skip_widths.append(ch)

        self.mid = nn.ModuleList(
            [_Stage(res(ch, ch), attn(ch, cfg.mid_attention)), _Stage(res(ch, ch), None)]
        )

        # Decoder: num_res_blocks + 1 stages per level, each consuming one skip.
        self.decoder = nn.ModuleList()
        for level in reversed(range(cfg.num_levels)):
            width = widths[level]
            for _ in range(cfg.num_res_blocks + 1):
                self.decoder.append(
                    _Stage(
                        res(ch + skip_widths.pop(), width),
                        attn(width, level in cfg.attention_levels),
                    )
                )
                ch = width
            if level > 0:
                self.decoder.append(Upsample(ch))

        self.norm_out = nn.GroupNorm(cfg.num_groups, ch)
        self.conv_out = nn.Conv2d(ch, cfg.resolved_out_channels, 3, padding=1)
        # Zero-init: the untrained network predicts ε = 0, a stable start.
        nn.init.zeros_(self.conv_out.weight)
        if self.conv_out.bias is not None:
            nn.init.zeros_(self.conv_out.bias)

    def _check_inputs(self, x: Tensor, t: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
        if x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"x has {x.shape[1]} channels, the model expects {self.config.in_channels}"
            )
        if x.shape[-2] < 1 or x.shape[-1] < 1:
            raise ValueError(f"x must have H, W >= 1, got {tuple(x.shape)}")
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return t.to(device=x.device, dtype=torch.float32)

    def _pad(self, x: Tensor) -> Tensor:
        m = self.config.size_multiple
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if ph == 0 and pw == 0:
            return x
        # Reflect keeps local statistics natural; it needs pad < size, else replicate.
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    @staticmethod
    def uses_channels_last(x: Tensor) -> bool:
        """Whether ``forward`` runs in the channels-last format: CPU inference (no autograd)."""
        return x.device.type == "cpu" and not torch.is_grad_enabled()

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = self._check_inputs(x, t)
        return self.forward_embedded(x, timestep_embedding(t, self.time_embed_dim).to(x.dtype))

    def forward_embedded(self, x: Tensor, code: Tensor) -> Tensor:
        """The network on ``x`` given the ``(B, time_embed_dim)`` code that ``forward`` makes
        from ``t``; a model conditioned on something else than one time (the band reader's two
        noise levels, :mod:`sagd_core.models.band_reader`) makes its own code."""
        height, width = x.shape[-2:]
        emb = self.time_mlp(code)

        channels_last = self.uses_channels_last(x)
        h = self._pad(x)
        if channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        h = self.conv_in(h)
        skips = [h]
        for block in self.encoder:
            h = block(h, emb) if isinstance(block, _Stage) else block(h)
            skips.append(h)

        for block in self.mid:
            h = block(h, emb)

        for block in self.decoder:
            if isinstance(block, _Stage):
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = block(h)

        out: Tensor = self.conv_out(F.silu(self.norm_out(h), inplace=channels_last))
        out = out[..., :height, :width]
        return out.contiguous() if channels_last else out
