"""An app wired to the session's real Redis and a fake queue (no workers): ``client``, with its
``settings`` and ``queue`` (``tests/harness.py``)."""

from __future__ import annotations

from tests.harness import client, queue, settings

__all__ = ["client", "queue", "settings"]
