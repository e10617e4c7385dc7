"""The training loop: it only orchestrates (improved-diffusion's habit).

AdamW with linear warm-up, EMA, gradient clipping, seeded generators (data order and noise),
periodic atomic checkpoints, exact resume (optimizer, EMA and RNG states are saved), CUDA with
optional bf16 autocast when available, CPU otherwise. Progress goes to a callback; raising inside
the callback stops training (cancellation) after the last checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagd_core.checkpoint import (
    load_checkpoint,
    load_optimizer_state,
    optimizer_state_to_tensors,
    save_checkpoint,
)
from sagd_core.data import dataset_hash
from sagd_core.devices import resolve_device
from sagd_core.diffusion import eps_loss
from sagd_core.models import UNet, count_parameters
from sagd_core.schedule_design import estimate_spectrum
from sagd_core.spectral.operator import SpectralNoise
from sagd_core.training.config import TrainConfig
from sagd_core.training.dataset import load_training_images
from sagd_core.training.ema import EMA

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainProgress:
    step: int  # steps completed
    total: int
    loss: float  # this step's mean loss
    loss_avg: float  # running mean over the last ≤ 100 steps
    images_per_s: float
    eta_s: float


@dataclass
class TrainResult:
    directory: Path
    steps: int
    final_loss: float
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0


def _lr_factor(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


class _State:
    """Everything that must survive a resume."""

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        torch.manual_seed(config.seed)  # parameter initialisation only
        self.net = UNet(config.model).to(device)
        self.ema = EMA(self.net, config.ema_decay)
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.data_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
        self.step = 0
        self.history: list[tuple[int, float]] = []

    def tensors(self, opt_tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "model": dict(self.net.state_dict()),
            "ema": dict(self.ema.model.state_dict()),
            "optimizer": opt_tensors,
            "rng": {
                "data": self.data_gen.get_state(),
                "noise": self.noise_gen.get_state().cpu(),
            },
        }

    def restore(self, directory: Path) -> None:
        ckpt = load_checkpoint(directory)
        self.net.load_state_dict(ckpt.tensors["model"])
        self.ema.model.load_state_dict(ckpt.tensors["ema"])
        load_optimizer_state(self.opt, ckpt.tensors["optimizer"], ckpt.meta["optimizer"])
        self.data_gen.set_state(ckpt.tensors["rng"]["data"])
        self.noise_gen.set_state(ckpt.tensors["rng"]["noise"].cpu())
        self.step = int(ckpt.meta["step"])
        self.ema.num_updates = int(ckpt.meta.get("ema_updates", self.step))
        self.history = [(int(s), float(v)) for s, v in ckpt.meta.get("loss_history", [])]


def _meta(
    config: TrainConfig,
    state: _State,
    data_hash: str,
    opt_scalars: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "step": state.step,
        "ema_updates": state.ema.num_updates,
        "dataset_hash": data_hash,
        "parameters": count_parameters(state.net),
        "loss_history": state.history,
        "optimizer": opt_scalars,
        "band_spec": config.band.model_dump() if config.band else None,
        "noise": config.noise.model_dump(),
        "schedule": config.schedule.model_dump(),
        **extra,
    }


def train(
    config: TrainConfig,
    out_dir: Path | str,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    images: np.ndarray | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train ``config`` into ``out_dir`` (a checkpoint directory, replaced atomically).

    ``images`` overrides ``config.data`` (an ``(N, C, H, W)`` float array in [-1, 1]). With
    ``resume`` and an existing checkpoint whose config matches, training continues from its step.
    """
    out_dir = Path(out_dir)
    device = resolve_device(config.device)
    data = load_training_images(config.data) if images is None else images
    if data.ndim != 4 or data.shape[1] != config.model.in_channels:
        raise ValueError(
            f"training images must be (N, {config.model.in_channels}, H, W), got {data.shape}"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("training images contain non-finite values")
    data_hash = dataset_hash(data)
    x_all = torch.as_tensor(np.ascontiguousarray(data), dtype=torch.float32, device=device)
    n, _, h, w = x_all.shape

    state = _State(config, device)
    if resume and (out_dir / "config.json").exists():
        saved = load_checkpoint(out_dir, groups=[]).config
        # parsed, so that a field added later with a default does not make it "different"
        if TrainConfig.model_validate(saved) != config:
            raise ValueError(
                f"{out_dir} holds a checkpoint of a different config; "
                "use a new output folder or resume=False"
            )
        state.restore(out_dir)
        logger.info("resuming from step %d", state.step)

    schedule = config.schedule.build()
    noise_op = SpectralNoise(config.noise, h, w, device=device)
    autocast = config.bf16 and device.type == "cuda"
    logger.info(
        "training %s model (%d parameters) on %d images %dx%d, noise %s, device %s",
        config.role,
        count_parameters(state.net),
        n,
        h,
        w,
        config.noise.describe(),
        device,
    )

    # The data spectrum λ(f) is saved with every model so schedules can be fitted to it later
    # (DESIGN.md §5); computed once here, not at every checkpoint.
    spectrum = estimate_spectrum(data).to_dict()

    def save() -> None:
        # One snapshot of the optimizer state: its tensors go to safetensors, its scalars to meta.
        opt_tensors, opt_scalars = optimizer_state_to_tensors(state.opt)
        meta = _meta(
            config, state, data_hash, opt_scalars, {"image_size": [h, w], "spectrum": spectrum}
        )
        save_checkpoint(
            out_dir,
            tensors=state.tensors(opt_tensors),
            config=config.model_dump(mode="json"),
            meta=meta,
        )

    started = time.perf_counter()
    recent: list[float] = []
    loss_value = float("nan")
    first_step = state.step
    while state.step < config.steps:
        for group in state.opt.param_groups:
            group["lr"] = config.lr * _lr_factor(state.step, config.warmup_steps)
        idx = torch.randint(0, n, (config.batch_size,), generator=state.data_gen)
        x0 = x_all[idx.to(device)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = eps_loss(
                state.net,
                x0,
                schedule,
                noise_op,
                generator=state.noise_gen,
                project_trusted=config.project_trusted,
            ).mean()
        state.opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(state.net.parameters(), config.grad_clip)
        state.opt.step()
        state.ema.update(state.net)
        state.step += 1

        loss_value = float(loss.detach())
        if not np.isfinite(loss_value):
            raise FloatingPointError(f"loss became {loss_value} at step {state.step}")
        recent = [*recent, loss_value][-100:]
        if state.step % max(1, config.steps // 200) == 0 or state.step == config.steps:
            state.history.append((state.step, float(np.mean(recent))))
        if state.step % config.checkpoint_every == 0 or state.step == config.steps:
            save()
        if progress is not None:
            elapsed = time.perf_counter() - started
            done = state.step - first_step
            rate = done / elapsed if elapsed > 0 else 0.0
            progress(
                TrainProgress(
                    step=state.step,
                    total=config.steps,
                    loss=loss_value,
                    loss_avg=float(np.mean(recent)),
                    images_per_s=rate * config.batch_size,
                    eta_s=(config.steps - state.step) / rate if rate > 0 else float("inf"),
                )
            )
    if state.step == first_step and not (out_dir / "config.json").exists():
        save()
    return TrainResult(
        directory=out_dir,
        steps=state.step,
        final_loss=loss_value,
        loss_history=state.history,
        seconds=time.perf_counter() - started,
    )
