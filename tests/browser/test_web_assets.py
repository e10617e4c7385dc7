"""The page and its assets are served (no browser, no Redis, no worker)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from service.api.app import create_app
from service.api.web.make_example import SIDE, write_example
from service.settings import Settings
from tests.harness import FakeQueue

IMPORT = re.compile(r"""^import .* from "\./([a-z]+\.js)";$""", re.MULTILINE)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, env="development", storage_root=tmp_path, redis_url="redis://127.0.0.1:1/0"
    )
    offline = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=0.1)
    with TestClient(create_app(settings, queue=FakeQueue(), client=offline)) as test_client:
        yield test_client


def test_index_is_html_with_a_strict_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/static/app.js">' in response.text
    assert "https://" not in response.text  # no CDN: everything from this origin


def test_every_referenced_asset_is_served(client: TestClient) -> None:
    """The stylesheet, the entry module and every module it imports, transitively."""
    page = client.get("/").text
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"] == "text/css; charset=utf-8"
    assert 'href="/static/style.css"' in page
    pending, seen = ["app.js"], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert "https://" not in response.text
        pending += IMPORT.findall(response.text)
    assert {"api.js", "editor.js", "spectrum.js", "bands.js", "restore.js", "views.js"} <= seen


@pytest.mark.parametrize(
    "path",
    ["/static/missing.js", "/static/routes.py", "/static/..%2Froutes.py", "/static/index.html"],
)
def test_other_paths_are_json_404s(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_page_is_not_in_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


def test_the_page_has_an_icon_and_favicon_ico_does_not_404(client: TestClient) -> None:
    page = client.get("/").text
    assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in page
    for url in ("/static/favicon.svg", "/favicon.ico"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.text.startswith("<svg")


def test_the_example_is_served_small_and_made_by_its_script(
    client: TestClient, tmp_path: Path
) -> None:
    """The "try an example" image and band spec: served, under 150 KB, and exactly what
    ``python -m service.api.web.make_example`` writes (so the shipped files can be remade)."""
    image = client.get("/static/example.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert len(image.content) < 150_000
    spec = client.get("/static/example-band.json")
    assert spec.status_code == 200 and spec.headers["content-type"] == "application/json"
    regions = spec.json()["regions"]
    assert regions and all(r["kind"] == "notch" for r in regions)
    made_image, made_spec = write_example(tmp_path / "made")
    assert made_image.read_bytes() == image.content
    assert json.loads(made_spec.read_text()) == spec.json()
    with Image.open(made_image) as opened:
        assert opened.size == (SIDE, SIDE)
