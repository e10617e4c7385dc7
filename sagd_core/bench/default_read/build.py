"""Train the band reader that ships with sagd and export it (``make default-read-model``).

Random 64-px gray crops of the TRAIN split and dead-leaves scenes under random bands and levels
(:mod:`.data`), x-prediction MSE, AdamW with a cosine decay, EMA weights exported as
safetensors beside ``config.json`` (the :class:`BandReaderConfig`) and ``meta.json`` (steps,
loss curve, time, machine). Deterministic given ``--seed`` and the thread count. Resumes from
``--work`` (a partial run's last state) when it holds one.

    python -m sagd_core.bench.default_read.build --out sagd_core/models/default_read/weights
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from sagd_core.bench.default_read.data import (
    BAND_STD_RANGE,
    WHITE_STD_RANGE,
    draw_batch,
    training_planes,
)
from sagd_core.models.band_reader import BandReader, BandReaderConfig
from sagd_core.models.default_read import DEFAULT_READER_DIR
from sagd_core.models.presets import UNetConfig

PATCH = 64
BATCH = 16
LR = 2e-3
FINAL_LR = 5e-5
WARMUP = 100
EMA = 0.999
#: A draw's squared error is divided by its input noise power to this power: 0 is the plain
#: MSE (strong noise dominates), 1 weighs every level's dB gain alike (weak noise dominates).
LOSS_POWERS = {"mse": 0.0, "sqrt": 0.5, "relative": 1.0}


def reader_config() -> BandReaderConfig:
    return BandReaderConfig(
        unet=UNetConfig(
            in_channels=2,
            out_channels=3,
            base_channels=16,
            channel_mults=(1, 2, 2),
            num_res_blocks=1,
            mid_attention=False,
        ),
        band_std_range=BAND_STD_RANGE,
        white_std_range=WHITE_STD_RANGE,
    )


def learning_rate(step: int, steps: int) -> float:
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, steps - WARMUP)
    return FINAL_LR + 0.5 * (LR - FINAL_LR) * (1.0 + math.cos(math.pi * min(1.0, progress)))


def export(model: torch.nn.Module, config: BandReaderConfig, meta: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in model.state_dict().items()}, out / "ema.safetensors"
    )
    (out / "config.json").write_text(config.model_dump_json(indent=2) + "\n")
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=7000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("var/default-read-train"))
    parser.add_argument("--out", type=Path, default=DEFAULT_READER_DIR)
    parser.add_argument("--every", type=int, default=500, help="save/export every N steps")
    parser.add_argument("--loss", choices=sorted(LOSS_POWERS), default="mse")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    config = reader_config()
    model = BandReader(config)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    start, losses, seconds = 0, [], 0.0
    state_file = args.work / "state.pt"
    if state_file.exists():
        state = torch.load(state_file, weights_only=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        start, losses, seconds = state["step"], state["losses"], state["seconds"]
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
    else:
        rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    planes = training_planes()
    data_seconds = time.perf_counter() - t0
    window: list[float] = []
    for step in range(start, args.steps):
        t_step = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, args.steps)
        x, y, mask, band_std, white_std = draw_batch(planes, BATCH, PATCH, rng)
        noise_power = band_std**2 * mask.mean(dim=(1, 2, 3)) + white_std**2
        error = torch.mean((model(y, mask, band_std, white_std) - x) ** 2, dim=(1, 2, 3))
        loss = torch.mean(error / noise_power ** LOSS_POWERS[args.loss])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(EMA, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters(), strict=True):
                e.lerp_(p, 1.0 - decay)
        window.append(float(loss.detach()))
        seconds += time.perf_counter() - t_step
        done = step + 1
        if done % 50 == 0:
            losses.append([done, float(np.mean(window))])
            window = []
            print(f"step {done} loss {losses[-1][1]:.6f} {seconds:.0f}s", flush=True)
        if done % args.every == 0 or done == args.steps:
            args.work.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "opt": opt.state_dict(),
                    "step": done,
                    "losses": losses,
                    "seconds": seconds,
                    "rng": rng.bit_generator.state,
                },
                state_file,
            )
            meta = {
                "step": done,
                "steps": args.steps,
                "batch": BATCH,
                "patch": PATCH,
                "seed": args.seed,
                "loss": args.loss,
                "loss_history": losses,
                "train_seconds": round(seconds, 1),
                "data_seconds": round(data_seconds, 1),
                "machine": f"{platform.machine()} {platform.system()}, torch {torch.__version__}, "
                f"{torch.get_num_threads()} thread(s)",
            }
            export(ema, config, meta, args.out)


if __name__ == "__main__":
    main()
