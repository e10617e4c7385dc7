"""Samplers: one algorithm per file, pure functions of model + plan + noise operator + generator."""

from sagd_core.samplers.common import StepInfo
from sagd_core.samplers.ddim import ddim_step, sample_ddim
from sagd_core.samplers.ddpm import ddpm_step, sample_ddpm

SAMPLERS = {"ddim": sample_ddim, "ddpm": sample_ddpm}

__all__ = ["SAMPLERS", "StepInfo", "ddim_step", "ddpm_step", "sample_ddim", "sample_ddpm"]
