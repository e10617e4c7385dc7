"""Where the default natural-image model that ships with the project lies (MODEL_CARD.md beside
this file): a checkpoint directory (``ema.safetensors``, ``config.json``, ``meta.json``) that
:func:`sagd_core.restore.models.load_model` reads. ``make default-model`` rebuilds it
(:mod:`sagd_core.bench.default_model.build`); ``make serve`` registers it as ``default``.
"""

from __future__ import annotations

from pathlib import Path

#: The name ``make serve`` registers the model under (``SAGD_DEFAULT_MODEL``'s default).
DEFAULT_MODEL_NAME = "default"
#: The shipped checkpoint directory.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "checkpoint"

__all__ = ["DEFAULT_MODEL_DIR", "DEFAULT_MODEL_NAME"]
