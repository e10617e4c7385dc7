"""``sagd bench restore``: restoration quality of notch, SDEdit, DDNM and SAGD on held-out
package data, band detection precision/recall, and latency (DESIGN.md §4; issue targets).

Prints the environment, trains what is missing (models are kept under ``OUT/models`` and reused),
then writes ``OUT/results.md`` (the tables for docs/BENCHMARKS.md), ``OUT/results.json`` and
figures under ``OUT/figures``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from sagd_core.bench.figures import image_grid, line_chart, log_spectrum
from sagd_core.cli.common import CliError, add_command, add_preset_options
from sagd_core.cli.environment import start_preset_bench
from sagd_core.data import load_builtin, parse_corruption, write_image
from sagd_core.data.image_files import write_bytes_atomic

if TYPE_CHECKING:
    from sagd_core.bench.restore_lib import SettingResult, TrainedSet
    from sagd_core.training import TrainProgress


def register_bench(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "restore", _arguments, run)


def _arguments(p: argparse.ArgumentParser) -> None:
    """restoration quality, detection and latency"""
    from sagd_core.bench.restore_lib import PRESETS

    add_preset_options(p, PRESETS, Path("bench-out/restore"))
    p.add_argument(
        "--train-steps", type=int, help="override the preset's training steps (every role)"
    )
    p.add_argument("--test-images", type=int, help="override the preset's test image count")
    p.add_argument(
        "--calibration-images",
        type=int,
        help="override the preset's count of held-out images that calibrate the fill (at least 2)",
    )
    p.add_argument("--skip-latency", action="store_true")


def _fmt(v: float, spread: float | None = None) -> str:
    text = "∞" if v == float("inf") else f"{v:.2f}"
    return f"{text} ± {spread:.2f}" if spread else text


def _setting_table(res: SettingResult) -> list[str]:
    from sagd_core.bench.restore_lib import METHODS

    lines = [
        "| method | PSNR | PSNR in-band | PSNR out-of-band | SSIM | SSIM in | SSIM out | s/image |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in METHODS:
        v, sd = res.metrics[m], res.spread[m]
        name = f"best notch ({res.notch_rolloff})" if m == "best notch" else m
        lines.append(
            f"| {name} | {_fmt(v['psnr'], sd['psnr'])} | {_fmt(v['psnr_in'])} | "
            f"{_fmt(v['psnr_out'])} | {v['ssim']:.3f} | {v['ssim_in']:.3f} | "
            f"{v['ssim_out']:.3f} | {res.seconds_per_image[m]:.3f} |"
        )
    return lines


def _calibration_note(trained: TrainedSet, noise_std: float) -> str:
    calib = trained.calibration
    magnitude = calib.get("magnitude") or {}
    text = (
        f"Band model calibration on {calib.get('images', 0)} held-out corrupted training "
        f"images: fill gain {calib.get('gain', 1.0):.3f} (raw "
        f"{calib.get('raw_gain', float('nan')):.3f}), corruption-to-noise ratio "
        f"ρ = {calib.get('corruption_ratio', 0.0):.3f}, read at ᾱ = "
        f"{calib.get('read_alpha_bar', 0.1):.2f}, "
        f"{len(magnitude.get('bins', []))} constant-magnitude bin(s)."
    )
    blend = next((c for c in trained.denoise_calibration if c["noise_std"] == noise_std), None)
    if blend is not None:
        pairs = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(blend["a"], blend["b"], strict=True))
        text += (
            " Omission-model denoising blend calibrated at this noise level (a/b per ring "
            f"of width {blend['ring_edges'][1]:.4f}): {pairs}."
        )
    return text


def _figures(
    out: Path, name: str, clean: np.ndarray, corrupted: np.ndarray, res: SettingResult
) -> list[str]:
    from sagd_core.bench.restore_lib import METHODS, slug
    from sagd_core.metrics import radial_power

    n = min(4, len(clean))
    cols = ["clean", "input", *METHODS[1:]]
    sets = [clean, corrupted, *(res.examples[m] for m in METHODS[1:])]
    rows = [[s[i] for s in sets] for i in range(n)]
    grid = image_grid(
        rows,
        row_labels=[f"image {i}" for i in range(n)],
        col_labels=["clean", "input", "notch", "SDEdit", "DDNM", "SAGD"],
        scale=4,
    )
    spectra = image_grid(
        [[log_spectrum(s[i]) for s in sets] for i in range(n)],
        row_labels=[f"image {i}" for i in range(n)],
        col_labels=["clean", "input", "notch", "SDEdit", "DDNM", "SAGD"],
        scale=4,
    )
    curves = {}
    for label, s in zip(cols, sets, strict=True):
        r, p = radial_power(s)
        curves[label] = (r, 10 * np.log10(p + 1e-12))
    chart = line_chart(curves, title=name, xlabel="radius (cycles/pixel)", ylabel="power (dB)")
    paths = []
    for kind, img in (("grid", grid), ("spectra", spectra), ("radial", chart)):
        path = out / "figures" / f"{slug(name)}-{kind}.png"
        write_image(path, img)
        paths.append(str(path.relative_to(out)))
    return paths


def _detection(preset_images: int, seed: int) -> dict[str, Any]:
    from sagd_core.bench.detection import evaluate_detection

    out: dict[str, Any] = {}
    for dataset, size in (("natural", 96), ("digits", 32)):
        images = load_builtin(dataset, image_size=size, split="test", count=preset_images)
        scores = evaluate_detection(images, seed=seed)
        out[f"{dataset} {size}px"] = {
            k: {
                "precision": v.precision,
                "recall": v.recall,
                "detections": v.detections,
                "items": v.items,
                "images": v.images,
            }
            for k, v in scores.items()
        }
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from sagd_core.bench.restore_lib import (
        METHODS,
        PRESETS,
        evaluate_setting,
        measure_latency,
        test_set,
        train_models,
    )

    started = time.perf_counter()
    preset = PRESETS[args.preset]
    overrides: dict[str, Any] = {}
    if args.train_steps is not None:
        overrides["train_steps"] = args.train_steps
        overrides["role_steps"] = ()
    if args.test_images is not None:
        overrides["test_images"] = args.test_images
    if args.calibration_images is not None:
        if args.calibration_images < 2:
            raise SystemExit("--calibration-images must be at least 2")
        overrides["calibration_images"] = args.calibration_images
    if overrides:
        from dataclasses import replace

        preset = replace(preset, **overrides)
    if args.threads is not None:
        if args.threads < 1:
            raise CliError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    out: Path = args.out
    device, env = start_preset_bench(args.device, preset, out)
    results: dict[str, Any] = {"environment": env, "preset": preset.name, "settings": []}
    md = [f"## sagd bench restore --preset {preset.name}", "", "```", env, "```", ""]
    train_bar = tqdm(total=0, desc="train", unit="step", disable=args.no_progress)

    def on_train(tag: str, p: TrainProgress) -> None:
        if p.step == 1:
            train_bar.total = (train_bar.total or 0) + p.total
            train_bar.set_postfix_str(tag)
        train_bar.update(1)

    summary: list[tuple[str, dict[str, float]]] = []
    for dataset in preset.datasets:
        for label, corruption in preset.corruptions:
            trained = train_models(
                preset,
                dataset,
                label,
                corruption,
                out / "models",
                device=str(device),
                on_progress=on_train,
            )
            spec = parse_corruption(corruption).band_spec()
            for s in preset.noise_levels:
                name = f"{dataset} {label}" + (f" + noise {s}" if s else "")
                clean, corrupted = test_set(preset, dataset, corruption, s)
                with tqdm(
                    total=3 * len(clean) * len(preset.seeds),
                    desc=name[:30],
                    unit="img",
                    disable=args.no_progress,
                    leave=False,
                ) as bar:
                    res = evaluate_setting(
                        preset,
                        trained.models,
                        spec,
                        clean,
                        corrupted,
                        s,
                        device=str(device),
                        tick=bar.update,
                    )
                figs = _figures(out, name, clean, corrupted, res)
                md += [
                    f"### {name}",
                    "",
                    *_setting_table(res),
                    "",
                    _calibration_note(trained, s),
                    "",
                    *(f"![{f}]({f})" for f in figs),
                    "",
                ]
                summary.append((name, {m: res.metrics[m]["psnr"] for m in METHODS}))
                results["settings"].append(
                    {
                        "name": name,
                        "dataset": dataset,
                        "corruption": corruption,
                        "noise_std": s,
                        "band": spec.model_dump(mode="json"),
                        "metrics": res.metrics,
                        "spread": res.spread,
                        "seconds_per_image": res.seconds_per_image,
                        "notch_rolloff": res.notch_rolloff,
                        "train_seconds": trained.seconds,
                        "train_final_loss": trained.final_loss,
                        "fill_calibration": trained.calibration,
                        "denoise_calibration": trained.denoise_calibration,
                    }
                )
    train_bar.close()
    head = [
        "| setting | " + " | ".join(METHODS) + " | SAGD − best notch | SAGD − SDEdit |",
        "|---" * (len(METHODS) + 3) + "|",
    ]
    rows = []
    for name, psnrs in summary:
        sagd = psnrs["SAGD (corrupted-trained)"]
        rows.append(
            f"| {name} | "
            + " | ".join(f"{psnrs[m]:.2f}" for m in METHODS)
            + f" | {sagd - psnrs['best notch']:+.2f} | "
            f"{sagd - psnrs['SDEdit (corrupted-trained)']:+.2f} |"
        )
    md[6:6] = ["### PSNR summary (dB, mean over test images and seeds)", "", *head, *rows, ""]

    detection = _detection(preset.detection_images, seed=0)
    results["detection"] = detection
    md += [
        "### Band detection (sagd analyze) on synthetic corruptions",
        "",
        "| images | corruption | precision | recall | detections | items |",
        "|---|---|---|---|---|---|",
    ]
    for where, scores in detection.items():
        for kind, v in scores.items():
            md.append(
                f"| {where} | {kind} | {v['precision']:.2f} | {v['recall']:.2f} | "
                f"{v['detections']} | {v['items']} |"
            )
    md.append("")
    if not args.skip_latency:
        lat = measure_latency(preset.unet, 256, 50, device=str(device))
        results["latency"] = lat
        md += [
            "### Latency: 256×256 RGB, SAGD band fill, 50 steps, 1 sample",
            "",
            f"U-Net `{preset.unet}` on {device}; one bare network call "
            f"{lat['bare_forward_s'] * 1000:.1f} ms; notch alone "
            f"{lat['notch_s'] * 1000:.1f} ms.",
            "",
            "| estimator | network calls | total s | sampler overhead |",
            "|---|---|---|---|",
        ]
        for est in ("mean", "sample"):
            v = lat[est]
            md.append(
                f"| {est} | {v['network_calls']} | {v['total_s']:.2f} | "
                f"{v['overhead'] * 100:.1f}% |"
            )
        md.append("")
    total = time.perf_counter() - started
    results["wall_seconds"] = total
    md.append(f"Total wall time: {total / 60:.1f} min.")
    text = "\n".join(md) + "\n"
    write_bytes_atomic(out / "results.md", text.encode())
    write_bytes_atomic(out / "results.json", json.dumps(results, indent=2).encode())
    print(text)
    return 0
