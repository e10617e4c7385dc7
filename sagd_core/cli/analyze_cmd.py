"""``sagd analyze``: find corrupted frequency bands in an image or a folder and emit a band spec.

For a folder, every image is analyzed and the spec keeps regions found in at least half of them
(``--min-support``). ``--out`` receives the band spec JSON (atomically); ``--report`` the full
analysis (power-law fit, radial profile, regions with their scores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sagd_core.cli.common import CliError, add_command, image_inputs


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "analyze", _arguments, run)


def _arguments(p: argparse.ArgumentParser) -> None:
    """detect corrupted frequency bands; print a band spec

    Power spectrum, power-law trend, and the peaks (periodic interference), lines (stripes)
    and rings (band-limited noise) standing above it, as a band spec."""
    p.add_argument("input", type=Path, help="an image file or a folder of images")
    p.add_argument("--out", "-o", type=Path, help="write the band spec JSON here")
    p.add_argument("--report", type=Path, help="write the full analysis JSON here")
    p.add_argument("--max-regions", type=int, default=8)
    p.add_argument(
        "--min-support",
        type=float,
        default=0.5,
        help="folder: keep regions found in at least this share of the images",
    )
    from sagd_core.analysis.analyze import AnalyzeConfig

    defaults = AnalyzeConfig()
    for flag in ("peak", "line", "annulus"):
        p.add_argument(f"--{flag}-db", type=float, default=getattr(defaults, f"{flag}_db"))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sagd_core.analysis.analyze import AnalyzeConfig, analyze_image, combine_analyses
    from sagd_core.data import read_image
    from sagd_core.data.image_files import write_bytes_atomic

    try:
        config = AnalyzeConfig(
            max_regions=args.max_regions,
            peak_db=args.peak_db,
            line_db=args.line_db,
            annulus_db=args.annulus_db,
        )
    except ValidationError as exc:
        raise CliError(
            f"invalid analyze options: {exc.errors(include_url=False)[0]['msg']}"
        ) from exc
    if not 0.0 < args.min_support <= 1.0:
        raise CliError("--min-support must be in (0, 1]")
    files = image_inputs(args.input)
    analyses = []
    per_image: list[dict[str, Any]] = []
    for file in tqdm(files, desc="analyze", unit="image", disable=args.no_progress):
        analysis = analyze_image(read_image(file), config)
        analyses.append(analysis)
        per_image.append({"input": str(file), **analysis.to_dict()})
    if len(files) == 1:
        spec = analyses[0].spec
    else:
        spec = combine_analyses(
            analyses, min_support=args.min_support, max_regions=args.max_regions
        )
    spec_json = spec.model_dump(mode="json") if spec is not None else None
    if args.report is not None:
        report = {"band_spec": spec_json, "images": per_image}
        write_bytes_atomic(args.report, json.dumps(report, indent=2).encode())
    if spec_json is None:
        print(f"no band stands above the spectral trend in {len(files)} image(s)")
        return 3
    text = json.dumps(spec_json, indent=2)
    if args.out is not None:
        write_bytes_atomic(args.out, text.encode())
        kinds = ", ".join(r["kind"] for r in spec_json["regions"])
        print(
            f"wrote a band spec with {len(spec_json['regions'])} region(s) ({kinds}) to {args.out}"
        )
    else:
        print(text)
    return 0
