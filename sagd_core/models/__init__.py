"""Neural networks: the time-conditioned U-Net and its presets (ARCHITECTURE.md "models")."""

from sagd_core.models.presets import PRESET_NAMES, UNetConfig, unet_preset
from sagd_core.models.unet import UNet, count_parameters

__all__ = ["PRESET_NAMES", "UNet", "UNetConfig", "count_parameters", "unet_preset"]
