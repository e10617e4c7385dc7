"""Make ``camera_interference.png``, the README's example image: scikit-image's cameraman photo
(the ``camera`` image the ``natural`` dataset already uses), halved to 256×256, with a cosine
of amplitude 0.2 (full scale 1) at (fy, fx) = (1/16, 1/8) cycles/pixel added and the result
rounded and clipped to 8 bits. The clipping creates the interference's harmonics.

    .venv/bin/python examples/make_camera_interference.py [-o examples/camera_interference.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "camera_interference.png"
#: The interference: frequency in cycles/pixel, amplitude as a fraction of full scale, phase.
FY, FX = 1 / 16, 1 / 8
AMPLITUDE = 0.2
PHASE = 0.3


def camera_interference() -> np.ndarray:
    """The example image as 8-bit gray pixels ``(256, 256)``."""
    from skimage import data

    photo = data.camera().astype(np.float64) / 255.0  # 512×512
    half = photo.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    yy, xx = np.mgrid[0:256, 0:256]
    wave = AMPLITUDE * np.cos(2 * np.pi * (FY * yy + FX * xx) + PHASE)
    return np.clip(np.rint((half + wave) * 255.0), 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    Image.fromarray(camera_interference(), mode="L").save(args.output, optimize=True)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
