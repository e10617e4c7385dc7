"""A quick check of a band reader against the classical tier on the real-size benchmark's band
noise (test split by default): PSNR per scene of the unguarded read at the band level measured
on the image (what ``auto`` reads before its guard) and at the true level. The full figures,
guard included, come from ``sagd bench real --kinds band_noise --learned``.

    python -m sagd_core.bench.default_read.evaluate --model sagd_core/models/default_read/weights
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sagd_core.bench.real import corrupt, psnr, scenes
from sagd_core.models.band_reader import load_band_reader
from sagd_core.restore.engine import restore
from sagd_core.restore.inputs import prepare_image
from sagd_core.restore.methods.band_read import READ_TILE, band_levels, read
from sagd_core.restore.request import RestoreRequest


def true_band_std(size: int) -> float:
    """``s_b`` of the benchmark's band noise (pixel std 0.06 in [0, 1] on the annulus)."""
    r = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    share = float(((r >= 0.15) & (r < 0.30)).mean())
    return 2.0 * 0.06 / float(np.sqrt(share))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("sagd_core/models/default_read/weights"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--split", choices=["test", "train"], default="test")
    args = parser.parse_args(argv)
    reader = load_band_reader(args.model)
    gaps: dict[float, list[float]] = {s: [] for s in args.sigmas}
    for scene in scenes(args.sizes, split=args.split):
        for sigma in args.sigmas:
            y, spec = corrupt(scene, "band_noise", sigma, seed=0)
            request = RestoreRequest(band=spec, method="classical", input_noise_std=2 * sigma)
            classical = restore(y, request).unclipped
            prepared = prepare_image(y)
            t0 = time.perf_counter()
            levels = band_levels(prepared.chw, request)
            est = prepared.to_caller(
                read(reader, prepared.chw, request, levels, tile=READ_TILE, overlap=32), clip=False
            )
            seconds = time.perf_counter() - t0
            true = [true_band_std(scene.size)] * len(levels)
            oracle = prepared.to_caller(
                read(reader, prepared.chw, request, true, tile=READ_TILE, overlap=32), clip=False
            )
            c, r, o = (psnr(v, scene.image) for v in (classical, est, oracle))
            gaps[sigma].append(r - c)
            print(
                f"{scene.name:20s} σ={sigma:.2f} classical {c:.2f} read {r:.2f} ({r - c:+.2f}) "
                f"read@true {o:.2f} s_b {np.mean(levels):.3f}/{true[0]:.3f} {seconds:.2f}s",
                flush=True,
            )
    for sigma, g in gaps.items():
        print(f"σ={sigma:g}: read − classical mean {np.mean(g):+.2f} dB, worst {min(g):+.2f}")


if __name__ == "__main__":
    main()
