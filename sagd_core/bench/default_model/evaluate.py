"""The default model measured at real size: ``ddnm`` with it against the notch and the classical
tier on the scenes and corruptions of ``sagd bench real`` (:mod:`sagd_core.bench.real`), per
corruption kind, with the seconds per image of each column.

    python -m sagd_core.bench.default_model.evaluate [--full] [--steps 25] [--sigmas 0 0.02]

Gray scenes go through the RGB model as three equal channels
(:mod:`sagd_core.restore.gray_via_rgb`). The scenes are
the ``natural`` TEST photos and dead-leaves seeds 1-2, none of which the model was trained on.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sagd_core.bench.real import KINDS, corrupt, psnr, scenes
from sagd_core.bench.scenes import Scene
from sagd_core.models.default import DEFAULT_MODEL_DIR
from sagd_core.restore.engine import restore
from sagd_core.restore.models import ModelSet, load_model
from sagd_core.restore.request import Method, RestoreRequest

COLUMNS = ("identity", "notch", "classical", "ddnm")


def run_scene(
    scene: Scene,
    kind: str,
    sigma: float,
    models: ModelSet,
    *,
    steps: int,
    seed: int,
    samples: int = 1,
) -> list[dict[str, Any]]:
    """One corrupted scene through every column: PSNR (dB, against the clean scene) and
    seconds."""
    y, spec = corrupt(scene, kind, sigma, seed)
    declared = 2.0 * sigma  # model range [-1, 1]
    rows = []
    for column in COLUMNS:
        t0 = time.perf_counter()
        if column == "identity":
            out = y
        elif column == "ddnm":
            request = RestoreRequest(
                band=spec,
                method="ddnm",
                steps=steps,
                seed=seed,
                samples=samples,
                input_noise_std=declared,
            )
            out = restore(y, request, models).unclipped
        else:
            method: Method = "notch" if column == "notch" else "classical"
            out = restore(
                y, RestoreRequest(band=spec, method=method, input_noise_std=declared)
            ).unclipped
        seconds = time.perf_counter() - t0
        rows.append(
            {
                "scene": scene.name,
                "channels": scene.channels,
                "kind": kind,
                "sigma": sigma,
                "column": column,
                "psnr": psnr(out, scene.image),
                "seconds": 0.0 if column == "identity" else seconds,
            }
        )
    return rows


def evaluate(
    chosen: Iterable[Scene],
    *,
    kinds: Sequence[str] = KINDS,
    sigmas: Sequence[float] = (0.0,),
    steps: int = 25,
    samples: int = 1,
    seed: int = 0,
    model_dir: Path = DEFAULT_MODEL_DIR,
) -> list[dict[str, Any]]:
    """Every (scene, kind, σ) through :data:`COLUMNS`."""
    models = ModelSet(full=load_model(model_dir))
    rows: list[dict[str, Any]] = []
    for scene in chosen:
        for kind in kinds:
            for sigma in sigmas:
                rows += run_scene(
                    scene, kind, sigma, models, steps=steps, seed=seed, samples=samples
                )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """Mean PSNR per (kind, σ) and column, ddnm − classical (mean and worst image), and the mean
    seconds per image of classical and ddnm."""
    head = (
        "| case | images | "
        + " | ".join(COLUMNS)
        + " | ddnm − classical (worst) | classical s | ddnm s |"
    )
    lines = [head, "|" + "---|" * (len(COLUMNS) + 5)]
    cases = dict.fromkeys((r["kind"], r["sigma"]) for r in rows)
    for kind, sigma in cases:
        sub = [r for r in rows if r["kind"] == kind and r["sigma"] == sigma]

        def mean(column: str, key: str, sub: list[dict[str, Any]] = sub) -> float:
            return float(np.mean([r[key] for r in sub if r["column"] == column]))

        per_scene: dict[str, dict[str, float]] = {}
        for r in sub:
            per_scene.setdefault(r["scene"], {})[r["column"]] = r["psnr"]
        gains = [v["ddnm"] - v["classical"] for v in per_scene.values()]
        cells = " | ".join(f"{mean(c, 'psnr'):.2f}" for c in COLUMNS)
        lines.append(
            f"| {kind} σ={sigma:g} | {len(per_scene)} | {cells} | "
            f"{np.mean(gains):+.2f} ({min(gains):+.2f}) | "
            f"{mean('classical', 'seconds'):.2f} | {mean('ddnm', 'seconds'):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="every 256² scene, not the quick set")
    parser.add_argument("--steps", type=int, default=25, help="DDNM sampling steps")
    parser.add_argument("--samples", type=int, default=1, help="DDNM samples (their mean)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    import torch

    chosen = scenes((256,), quick=not args.full)
    print(
        f"default model {args.model}; {len(chosen)} scenes at 256²; DDNM {args.steps} steps, "
        f"mean of {args.samples} sample(s); torch threads {torch.get_num_threads()}",
        flush=True,
    )
    rows = evaluate(
        chosen,
        kinds=args.kinds,
        sigmas=args.sigmas,
        steps=args.steps,
        samples=args.samples,
        model_dir=args.model,
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
