"""``make serve`` (``python -m service.embedded``) with its default model: the shipped
natural-image model is registered as ``default`` before the API answers, and ``method=ddnm`` with
no ``model`` runs with it on a real worker (an RGB image, a band filled)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.embedded import free_port
from tests.harness import BAND_JSON, REPO, Embedded, png_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start_serve(storage: Path, log: Path) -> Embedded:
    """``python -m service.embedded`` as ``make serve`` runs it (the default model included),
    on a free port with its own Redis and data folder, no API keys."""
    port = free_port()
    env = {**os.environ, "SAGD_STORAGE_ROOT": str(storage), "SAGD_DEVICE": "cpu"}
    for name in ("SAGD_API_KEYS", "SAGD_REDIS_URL", "SAGD_DEFAULT_MODEL"):
        env.pop(name, None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.embedded", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Embedded(process, f"http://127.0.0.1:{port}", log)


def test_serve_registers_the_default_model_and_ddnm_uses_it(tmp_path: Path) -> None:
    serve = start_serve(tmp_path / "storage", tmp_path / "serve.log")
    url = serve.url
    try:
        serve.wait_ready()
        (model,) = httpx.get(f"{url}/v1/models").json()
        assert model["name"] == "default", model
        (version,) = model["versions"]
        assert version["kind"] == "full" and version["channels"] == 3, version
        response = httpx.post(
            f"{url}/v1/restorations",
            files={"image": ("x.png", png_bytes(48, 40), "image/png")},
            data={"band_spec": BAND_JSON, "method": "ddnm", "steps": "4"},
        )
        assert response.status_code == 202, response.text
        job = response.json()["id"]
        body: dict[str, object] = {}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and body.get("state") not in ("succeeded", "failed"):
            body = httpx.get(f"{url}/v1/jobs/{job}").json()
            time.sleep(0.2)
        assert body.get("state") == "succeeded", (body, serve.tail())
        result = body["result"]
        assert isinstance(result, dict)
        assert result["model"] == "default:1" and result["band_actions"] == ["filled"], result
        assert serve.ctrl_c() == 0, serve.tail()
    finally:
        serve.kill()
