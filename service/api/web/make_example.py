"""Make the web page's "try an example" files: ``static/example.png`` and its band spec
``static/example-band.json``.

The image is a synthetic dead-leaves scene (:mod:`sagd_core.data.dead_leaves`: no photo from
outside the repository) with periodic interference at two frequencies
(:class:`sagd_core.data.corruptions.PeriodicStripes`), and the band spec is the one that
corruption declares (a notch pair per frequency). Deterministic: running it again writes the
same bytes.

    python -m service.api.web.make_example

Not imported by the app (the page serves the two files as they are).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from sagd_core.data.corruptions import PeriodicStripes, apply_corruption, corruption_band_spec
from sagd_core.data.dead_leaves import dead_leaves

STATIC = Path(__file__).resolve().parent / "static"
SIDE = 192
SEED = 7
#: Two interference frequencies (fy, fx) in cycles/pixel, on exact bins of a 192-pixel side.
FREQUENCIES = ((24 / SIDE, 36 / SIDE), (-40 / SIDE, 16 / SIDE))
CORRUPTION = PeriodicStripes(frequencies=FREQUENCIES, amplitude=0.18, notch_radius=0.02)


def example_pixels() -> np.ndarray:
    """The example as ``(H, W, 3)`` uint8: a dead-leaves scene plus the interference."""
    scene = dead_leaves(SIDE, channels=3, seed=SEED)  # (H, W, 3) in [0, 1]
    model_range = scene.transpose(2, 0, 1)[None] * 2.0 - 1.0  # (1, 3, H, W) in [-1, 1]
    corrupted = apply_corruption(model_range, CORRUPTION, seed=SEED)[0]
    return np.clip(np.rint((corrupted + 1.0) * 127.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def write_example(folder: Path) -> tuple[Path, Path]:
    """Write ``example.png`` and ``example-band.json`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    image_path, spec_path = folder / "example.png", folder / "example-band.json"
    Image.fromarray(example_pixels()).save(image_path, optimize=True)
    spec = corruption_band_spec(CORRUPTION)
    spec_path.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    return image_path, spec_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STATIC, help="folder (default: the page's)")
    args = parser.parse_args()
    for path in write_example(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
