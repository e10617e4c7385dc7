"""The in-process app's builders, for the tests that import them from here: ``tests/harness.py``."""

from __future__ import annotations

from tests.harness import BAND, BAND_JSON, FakeQueue, make_settings, png_bytes, restore_form

__all__ = ["BAND", "BAND_JSON", "FakeQueue", "make_settings", "png_bytes", "restore_form"]
