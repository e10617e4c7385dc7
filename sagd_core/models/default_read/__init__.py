"""Where the band reader that ships with the project lies (MODEL_CARD.md beside this file):
``ema.safetensors``, ``config.json`` (a :class:`~sagd_core.models.band_reader.BandReaderConfig`)
and ``meta.json``, read by :func:`sagd_core.models.band_reader.load_band_reader`.
``make default-read-model`` rebuilds it (:mod:`sagd_core.bench.default_read.build`); ``auto``
uses it on noise-like bands (:mod:`sagd_core.restore.methods.band_read`).
"""

from __future__ import annotations

from pathlib import Path

#: The shipped reader's directory.
DEFAULT_READER_DIR = Path(__file__).resolve().parent / "weights"

__all__ = ["DEFAULT_READER_DIR"]
