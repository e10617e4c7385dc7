"""``sagd bench real``: the classical tier against the notch at real sizes (256², 512²; gray and
RGB photos of the ``natural`` test split, or ``--split train`` for tuning, and dead-leaves
scenes), PSNR, SSIM and seconds per
image (:mod:`sagd_core.bench.real`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sagd_core.cli.common import CliError, add_command, add_scene_arguments
from sagd_core.cli.environment import describe_numpy_environment


def register_bench(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "real", _arguments, run, description=__doc__)


def _arguments(p: argparse.ArgumentParser) -> None:
    """classical tier vs notch on photos and synthetic scenes at real sizes"""
    from sagd_core.bench.real import KINDS, SPLITS

    add_scene_arguments(p, kinds=KINDS, out=Path("bench-out/real"), out_help="JSON and figure")
    p.add_argument(
        "--sigmas", type=float, nargs="+", default=None, help="broadband noise (default: 0 0.02)"
    )
    p.add_argument(
        "--split",
        choices=list(SPLITS),
        default="test",
        help="scenes: test (the figures we report) or train (for tuning)",
    )
    p.add_argument(
        "--learned",
        action="store_true",
        help="add the learned columns: auto (with its choice per image), the shipped band "
        "reader's unguarded read where auto would read, and DDNM with the shipped default model",
    )
    p.add_argument(
        "--retrained",
        action="append",
        default=[],
        metavar="KIND=DIR",
        help="add a sagd column for KIND with the band model in DIR (trained on that kind's "
        "corrupted images); repeatable",
    )
    p.add_argument(
        "--ddnm-steps",
        type=int,
        default=25,
        help="sampler steps of the DDNM column (0: no DDNM column)",
    )
    p.add_argument(
        "--fill",
        action="store_true",
        help="with --retrained: also the band model's out-of-band-only posterior-mean fill, "
        "unguarded (fill:retrained, sigma 0 only; slow: about 23 s per 256² gray image on a core)",
    )


def run(args: argparse.Namespace) -> int:
    from sagd_core.bench import real, real_learned
    from sagd_core.bench.anchors import missing_anchors
    from sagd_core.data import write_image

    kinds = args.kinds or list(real.KINDS)
    sigmas = args.sigmas if args.sigmas is not None else list(real.SIGMAS)
    unknown = [k for k in kinds if k not in real.KINDS]
    if unknown or any(not 16 <= s <= 2048 for s in args.sizes) or any(s < 0 for s in sigmas):
        raise CliError(f"need kinds from {', '.join(real.KINDS)}, 16 ≤ sizes ≤ 2048 and sigmas ≥ 0")
    print(describe_numpy_environment("the classical tier"))
    print(f"command: sagd bench real {' '.join(sys.argv[3:]) if len(sys.argv) > 3 else ''}")
    scenes = real.scenes(args.sizes, quick=args.quick, split=args.split)
    print(f"{len(scenes)} scenes ({args.split}): {', '.join(s.name for s in scenes)}")
    for line in missing_anchors():
        print(line)
    default, retrained = _learned_models(args, kinds)
    rows = []
    for i, scene in enumerate(scenes):
        for kind in kinds:
            for sigma in sigmas:
                rows += real.run_case(scene, kind, sigma, seed=args.seed + i)
                if args.learned or retrained:
                    rows += real_learned.learned_rows(
                        scene,
                        kind,
                        sigma,
                        args.seed + i,
                        default=default,
                        retrained=retrained,
                        fill=args.fill,
                        steps=args.ddnm_steps,
                    )
    summary = real.summarize(rows)
    for size in sorted({r["size"] for r in rows}):
        for channels in (1, 3):
            sub = [r for r in rows if r["size"] == size and r["channels"] == channels]
            if sub:
                print(f"\n### {size}² {'gray' if channels == 1 else 'RGB'} (mean PSNR, dB)\n")
                print(real.markdown(real.summarize(sub)))
    print("\n### all scenes (mean PSNR, dB)\n")
    print(real.markdown(summary))
    print("\n### all scenes (mean SSIM)\n")
    print(real.markdown(summary, "ssim"))
    print("\nper-image checks (classical ≥ notch and ≥ input on every image; the guard):")
    print("\n".join(f"- {c}" for c in summary["checks"]) or "- all hold")
    if args.learned or retrained:
        print("\nlearned columns (auto ≥ classical on every image; learned − classical):")
        print("\n".join(f"- {c}" for c in real_learned.learned_checks(rows)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "summary": summary}))
    shown = next((s for s in scenes if s.name.startswith("coins")), scenes[0])
    fig = write_image(args.out / "crops.png", real.figure(shown, kinds, args.seed, crop=80))
    print(f"figure: centre crops of {shown.name}")
    print(f"\nwrote {args.out / 'results.json'} and {fig}")
    return 0


def _learned_models(args: argparse.Namespace, kinds: list[str]) -> tuple[Any, dict[str, Any]]:
    """The default model (with ``--learned``) and the ``--retrained KIND=DIR`` band models,
    loaded before any work so that a bad directory fails at once (imports torch: only here)."""
    if not args.learned and not args.retrained:
        return None, {}
    from sagd_core.models.default import DEFAULT_MODEL_DIR
    from sagd_core.restore.models import ModelSet, load_model

    retrained: dict[str, list[Any]] = {}
    for item in args.retrained:
        kind, sep, folder = item.partition("=")
        if not sep or kind not in kinds:
            raise CliError(f"--retrained wants KIND=DIR with KIND among {', '.join(kinds)}")
        model = load_model(Path(folder))
        if model.config.role != "band":
            raise CliError(f"--retrained {item}: a band model is needed, not {model.config.role}")
        if any(m.band.channels == model.channels for m in retrained.get(kind, [])):
            raise CliError(
                f"--retrained {item}: a second {model.channels}-channel model for {kind} "
                "(give at most one gray and one RGB model per kind)"
            )
        retrained.setdefault(kind, []).append(ModelSet(band=model))
    wanted = args.learned and args.ddnm_steps > 0
    default = ModelSet(full=load_model(DEFAULT_MODEL_DIR)) if wanted else None
    return default, retrained
