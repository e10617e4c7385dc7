"""Build the default model (``make default-model``): train the ``default`` preset on
:func:`~sagd_core.bench.default_model.data.default_training_images`, then export its EMA weights
alone (safetensors) with ``config.json`` and a ``meta.json`` that records the data mix, the loss
curve, the time and the machine.

The full training checkpoint (weights, EMA, optimizer, RNG) stays in ``--work``, so an interrupted
build resumes where it stopped; the exported folder is a checkpoint directory that
:func:`sagd_core.restore.models.load_model` and the service's registry read as any other.

    python -m sagd_core.bench.default_model.build --out sagd_core/models/default/checkpoint
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from sagd_core.bench.default_model.data import default_training_images
from sagd_core.checkpoint import load_checkpoint, save_checkpoint
from sagd_core.data import dataset_hash
from sagd_core.models.default import DEFAULT_MODEL_DIR
from sagd_core.training import TrainProgress, train, training_preset
from sagd_core.training.presets import DEFAULT_DATA

logger = logging.getLogger(__name__)

#: Where ``make default-model`` keeps its training checkpoint (it writes DEFAULT_MODEL_DIR).
WORK = Path("var/default-model-train")
#: Meta entries of the training checkpoint the shipped model leaves out (resume state only).
_DROP = ("optimizer", "ema_updates")


def machine() -> dict[str, Any]:
    """What the build ran on (for the model card)."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
    }


def export(work: Path, out: Path, extra: dict[str, Any]) -> Path:
    """Write the EMA weights of the training checkpoint ``work`` to ``out`` (safetensors group
    ``ema`` only), with its ``config.json`` and its ``meta.json`` less the resume state, plus
    ``extra`` under ``meta["build"]``."""
    ckpt = load_checkpoint(work, groups=["ema"])
    meta = {k: v for k, v in ckpt.meta.items() if k not in _DROP}
    meta["build"] = extra
    save_checkpoint(out, tensors={"ema": ckpt.tensors["ema"]}, config=ckpt.config, meta=meta)
    return out


def build(
    out: Path = DEFAULT_MODEL_DIR,
    work: Path = WORK,
    *,
    steps: int | None = None,
    log_every: int = 10,
) -> Path:
    """Train (or resume) the ``default`` preset in ``work`` and export it to ``out``."""
    config = training_preset("default")
    if steps is not None:
        config = config.model_copy(update={"steps": steps})
    t0 = time.perf_counter()
    images = default_training_images()
    data_s = time.perf_counter() - t0
    logger.info("training images %s built in %.1f s", images.shape, data_s)

    def progress(p: TrainProgress) -> None:
        if p.step % log_every == 0 or p.step == p.total:
            logger.info(
                "step %d/%d loss %.4f (mean of last 100 %.4f), %.1f img/s, eta %.0f s",
                p.step,
                p.total,
                p.loss,
                p.loss_avg,
                p.images_per_s,
                p.eta_s,
            )

    result = train(config, work, images=images, progress=progress)
    extra = {
        "command": "make default-model",
        "data": {
            **DEFAULT_DATA,
            "patch": config.data.image_size,
            "images": int(images.shape[0]),
            "dataset_hash": dataset_hash(images),
            "augmentation": "random flip/transpose (8 dihedral) per patch",
            "natural_photos": "the natural TRAIN split (sagd_core.data.builtin)",
        },
        "data_seconds": round(data_s, 1),
        "train_seconds_last_run": round(result.seconds, 1),
        "final_loss": result.final_loss,
        "machine": machine(),
    }
    export(work, out, extra)
    logger.info("exported %s (%d steps, %.0f s)", out, result.steps, result.seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="folder to export to")
    parser.add_argument("--work", type=Path, default=WORK, help="training checkpoint (resumes)")
    parser.add_argument("--steps", type=int, help="override the preset's steps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    build(args.out, args.work, steps=args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
