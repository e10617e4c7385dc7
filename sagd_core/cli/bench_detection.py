"""``sagd bench detection``: precision and recall of ``sagd analyze`` at real sizes (256², 512²;
gray and RGB photos of the ``natural`` test split and dead-leaves scenes) per corruption kind
(:mod:`sagd_core.bench.detection_real`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sagd_core.cli.common import CliError, add_command, add_scene_arguments
from sagd_core.cli.environment import describe_numpy_environment


def register_bench(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "detection", _arguments, run, description=__doc__)


def _arguments(p: argparse.ArgumentParser) -> None:
    """band detection precision/recall on photos and synthetic scenes at real sizes"""
    from sagd_core.bench.detection_real import KINDS

    add_scene_arguments(p, kinds=KINDS, out=Path("bench-out/detection"), out_help="JSON results")
    p.add_argument("--split", choices=["test", "train"], default="test", help="scenes to use")
    p.add_argument("--draws", type=int, default=2, help="random corruptions per scene and kind")


def run(args: argparse.Namespace) -> int:
    from sagd_core.bench import detection_real as dr

    kinds = args.kinds or list(dr.KINDS)
    unknown = [k for k in kinds if k not in dr.KINDS]
    if unknown or any(not 32 <= s <= 2048 for s in args.sizes) or args.draws < 1:
        raise CliError(f"need kinds from {', '.join(dr.KINDS)}, 32 ≤ sizes ≤ 2048, draws ≥ 1")
    print(describe_numpy_environment("analyze"))
    print(f"command: sagd bench detection {' '.join(sys.argv[3:]) if len(sys.argv) > 3 else ''}")
    scenes = dr.scenes(
        args.split, args.sizes, photos=1 if args.quick else None, leaves=1 if args.quick else None
    )
    print(f"{len(scenes)} scenes ({args.split}): {', '.join(s.name for s in scenes)}")
    t0 = time.perf_counter()
    rows = dr.evaluate(scenes, kinds=kinds, draws=args.draws, seed=args.seed)
    seconds = time.perf_counter() - t0
    for channels in (1, 3):
        sub = [r for r in rows if r["channels"] == channels]
        if sub:
            print(f"\n### {'gray' if channels == 1 else 'RGB'} (precision / recall)\n")
            print(dr.markdown(sub))
    print("\n### all scenes (precision / recall)\n")
    print(dr.markdown(rows))
    print(f"\n{len(rows)} images analysed, {seconds / max(len(rows), 1):.3f} s per image")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"rows": rows}))
    print(f"wrote {args.out / 'results.json'}")
    return 0
