"""U-Net configuration (frozen, JSON round-trippable) and named presets.

The configuration is saved as ``config.json`` beside every checkpoint, so it only holds plain
JSON types and validates everything a hand-edited or untrusted file could get wrong.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PRESET_NAMES", "UNetConfig", "unet_preset"]


class UNetConfig(BaseModel):
    """Architecture of the time-conditioned U-Net (ε predictor; it knows no noise schedule).

    Level ``i`` works at resolution ``H / 2**i`` with ``base_channels * channel_mults[i]``
    channels; inputs are padded internally to a multiple of ``2**(levels - 1)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_channels: int = Field(ge=1, le=4, description="image channels (1..4)")
    out_channels: int | None = Field(
        default=None, ge=1, le=16, description="output channels; None means in_channels"
    )
    base_channels: int = Field(default=32, ge=1, le=1024)
    channel_mults: tuple[int, ...] = Field(default=(1, 2, 2), min_length=1, max_length=8)
    num_res_blocks: int = Field(default=2, ge=1, le=8)
    attention_levels: tuple[int, ...] = Field(
        default=(), description="level indices with self-attention (may be empty)"
    )
    mid_attention: bool = Field(default=True, description="self-attention in the bottleneck")
    num_heads: int = Field(default=1, ge=1, le=64, description="attention heads")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    num_groups: int = Field(default=8, ge=1, le=1024, description="GroupNorm groups")

    @model_validator(mode="after")
    def _check_consistency(self) -> UNetConfig:
        if any(m < 1 for m in self.channel_mults):
            raise ValueError(f"channel_mults must be positive integers, got {self.channel_mults}")
        levels = len(self.channel_mults)
        bad = [i for i in self.attention_levels if not 0 <= i < levels]
        if bad:
            raise ValueError(
                f"attention_levels {bad} out of range for {levels} levels (valid: 0..{levels - 1})"
            )
        if len(set(self.attention_levels)) != len(self.attention_levels):
            raise ValueError(f"attention_levels has duplicates: {self.attention_levels}")
        for width in self.level_channels:
            if width % self.num_groups:
                raise ValueError(
                    f"num_groups={self.num_groups} must divide every level width "
                    f"{self.level_channels}"
                )
        attended = [self.level_channels[i] for i in self.attention_levels]
        if self.mid_attention:
            attended.append(self.level_channels[-1])
        for width in attended:
            if width % self.num_heads:
                raise ValueError(
                    f"num_heads={self.num_heads} must divide the width {width} of every "
                    "attention level"
                )
        return self

    @property
    def level_channels(self) -> tuple[int, ...]:
        """Channel width of each level."""
        return tuple(self.base_channels * m for m in self.channel_mults)

    @property
    def num_levels(self) -> int:
        return len(self.channel_mults)

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of this (one halving per level transition)."""
        return 2 ** (self.num_levels - 1)

    @property
    def resolved_out_channels(self) -> int:
        return self.in_channels if self.out_channels is None else self.out_channels


_PRESETS: dict[str, dict[str, object]] = {
    # ~0.26 M parameters: unit tests, the demo and the shipped default natural-image model
    # (sagd_core/models/default/); no attention at all, so it is purely convolutional and
    # carries from its training patches to any image size.
    "cpu-tiny": {
        "base_channels": 16,
        "channel_mults": (1, 2, 2),
        "num_res_blocks": 1,
        "attention_levels": (),
        "mid_attention": False,
        "num_groups": 8,
    },
    # ~1.6 M parameters: trains on CPU for 16×16 and 32×32 images; attention only at the
    # lowest resolution (4×4 / 8×8), where it is cheap.
    "cpu-small": {
        "base_channels": 32,
        "channel_mults": (1, 2, 2),
        "num_res_blocks": 2,
        "attention_levels": (2,),
        "mid_attention": True,
        "num_groups": 8,
    },
    # P1's 4-level U-Net, 32/64/128/256 channels, ≈15.9 M parameters (DESIGN.md §6); this
    # layout gives 15.89 M for one channel.
    "p1": {
        "base_channels": 32,
        "channel_mults": (1, 2, 4, 8),
        "num_res_blocks": 2,
        "attention_levels": (1, 2, 3),
        "mid_attention": True,
        "num_heads": 4,
        "num_groups": 32,
    },
}

PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)


def unet_preset(name: str, in_channels: int) -> UNetConfig:
    """Return the named preset for ``in_channels`` image channels.

    Raises:
        ValueError: unknown preset name (the message lists the valid names).
    """
    try:
        params = _PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown U-Net preset {name!r}; valid presets: {', '.join(PRESET_NAMES)}"
        ) from None
    return UNetConfig(in_channels=in_channels, **params)  # type: ignore[arg-type]
