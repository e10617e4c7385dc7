"""``sagd bench omission``: P1's selective-omission table on ``digits`` (DESIGN.md §6), standard DPM
versus bpm-SAGD with the corrupted band omitted, with our download-free metrics beside P1's FID.

Prints the environment, writes ``OUT/results.md``, ``OUT/results.json`` and sample grids under
``OUT/figures``. Models are kept under ``OUT/models`` and reused by a rerun.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from sagd_core.bench.figures import image_grid
from sagd_core.cli.common import CliError, add_command, add_preset_options
from sagd_core.cli.environment import start_preset_bench
from sagd_core.data import write_image
from sagd_core.data.image_files import write_bytes_atomic

if TYPE_CHECKING:
    from sagd_core.bench.omission_lib import BandResult
    from sagd_core.training import TrainProgress


def register_bench(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "omission", _arguments, run)


def _arguments(p: argparse.ArgumentParser) -> None:
    """P1's selective-omission experiment on digits"""
    from sagd_core.bench.omission_lib import PRESETS

    add_preset_options(p, PRESETS, Path("bench-out/omission"))
    p.add_argument("--train-steps", type=int, help="override the preset's training steps")
    p.add_argument("--seeds", type=int, help="number of training seeds (≥ 2 recommended)")
    p.add_argument("--bands", type=int, help="only the first N bands (smoke runs)")
    p.add_argument(
        "--no-project",
        action="store_true",
        help="train SAGD without trusted-band projection (P1's setting)",
    )
    p.add_argument(
        "--no-clip", action="store_true", help="do not clamp x̂₀ to [-1, 1] while sampling"
    )


def _ms(values: list[float]) -> str:
    return (
        f"{np.mean(values):.2f} ± {np.std(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from sagd_core.bench.omission_lib import (
        P1_FID,
        PRESETS,
        reference_scores,
        run_band,
        summarize,
    )

    started = time.perf_counter()
    preset = PRESETS[args.preset]
    if args.train_steps is not None:
        preset = replace(preset, train_steps=args.train_steps)
    if args.seeds is not None:
        if args.seeds < 1:
            raise CliError("--seeds must be at least 1")
        preset = replace(preset, train_seeds=tuple(range(args.seeds)))
    if args.bands is not None:
        preset = replace(preset, bands=preset.bands[: max(args.bands, 1)])
    if args.no_project:
        preset = replace(preset, project_trusted=False)
    if args.no_clip:
        preset = replace(preset, clip=False)
    if args.threads is not None:
        torch.set_num_threads(max(args.threads, 1))
    out: Path = args.out
    device, env = start_preset_bench(args.device, preset, out)
    total_steps = len(preset.bands) * len(preset.train_seeds) * 2 * preset.train_steps
    bar = tqdm(total=total_steps, desc="train", unit="step", disable=args.no_progress)

    def on_train(tag: str, p: TrainProgress) -> None:
        bar.set_postfix_str(tag)
        bar.update(1)

    results: list[BandResult] = []
    for low, high in preset.bands:
        results.append(
            run_band(preset, low, high, out / "models", device=str(device), on_progress=on_train)
        )
        r = results[-1]
        grid = image_grid(
            [list(r.examples["standard"][:8]), list(r.examples["sagd"][:8])],
            row_labels=["standard DPM", "bpm-SAGD"],
            col_labels=[f"#{i}" for i in range(8)],
            scale=3,
        )
        write_image(out / "figures" / f"samples-{low:.1f}-{high:.1f}.png", grid)
    bar.close()
    refs = reference_scores(preset)
    summary = summarize(results)
    md = [
        f"## sagd bench omission --preset {preset.name}",
        "",
        "```",
        env,
        "```",
        "",
        f"digits {preset.image_size}×{preset.image_size}, U-Net `{preset.unet}`, "
        f"{preset.train_steps} training steps × batch {preset.batch_size}, "
        f"{len(preset.train_seeds)} training seed(s), {preset.samples} DDIM samples "
        f"({preset.sample_steps} steps, x̂₀ clamped to [−1, 1] "
        f"{'on' if preset.clip else 'off'}) per model; SAGD trusted projection "
        f"{'on' if preset.project_trusted else 'off'}. FD: Fréchet distance in our digits "
        f"classifier's 64-d features (held-out accuracy {refs['classifier_accuracy']:.3f}; "
        f"clean train vs clean test: {refs['fd_clean_train_vs_test']:.2f}). Band energy: "
        "energy of the samples in the corrupted band relative to clean digits (1 = clean). "
        "Spectrum: radial power-spectrum distance to clean digits (dB RMS). "
        "Mean ± std over training seeds.",
        "",
        "| band (normalized) | FD standard | FD bpm-SAGD | band energy standard | "
        "band energy SAGD | spectrum dB standard | spectrum dB SAGD | P1 FID standard | "
        "P1 FID SAGD |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        st, sg = r.metrics["standard"], r.metrics["sagd"]
        p1 = P1_FID.get(r.label, (float("nan"), float("nan")))
        md.append(
            f"| {r.label} | {_ms(st['fd'])} | {_ms(sg['fd'])} | "
            f"{_ms(st['band_energy'])} | {_ms(sg['band_energy'])} | "
            f"{_ms(st['spectrum_db'])} | {_ms(sg['spectrum_db'])} | {p1[0]} | {p1[1]} |"
        )
    wins = summary["sagd_wins"]
    total = time.perf_counter() - started
    md += [
        "",
        f"SAGD better than standard in {wins['fd']}/{summary['bands']} bands by FD, "
        f"{wins['spectrum_db']}/{summary['bands']} by spectrum distance, "
        f"{wins['band_energy']}/{summary['bands']} by band energy (closer to 1). "
        f"P1: 8/8 by FID.",
        "",
        f"Total wall time: {total / 60:.1f} min.",
        "",
    ]
    text = "\n".join(md)
    payload: dict[str, Any] = {
        "environment": env,
        "preset": preset.name,
        "references": refs,
        "summary": summary,
        "bands": [
            {
                "band": r.label,
                "metrics": r.metrics,
                "train_seconds": r.train_seconds,
                "p1_fid": P1_FID.get(r.label),
            }
            for r in results
        ],
        "wall_seconds": total,
    }
    write_bytes_atomic(out / "results.md", text.encode())
    write_bytes_atomic(out / "results.json", json.dumps(payload, indent=2).encode())
    print(text)
    return 0
