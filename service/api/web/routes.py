"""``GET /`` (the restoration page) and ``GET /static/{name}`` (its CSS and JavaScript).

The assets ship as package data (``service/api/web/static``) and are read with
:mod:`importlib.resources`, so the page works from a wheel with no internet. Only flat names with a
known suffix are served (no paths), with a Content-Security-Policy that allows nothing but this
origin: the page talks to the same ``/v1`` API as any other client (docs/WEB.md).
"""

from __future__ import annotations

import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from service.api.errors import ApiProblem

router = APIRouter(include_in_schema=False)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",  # the "try an example" image (make_example.py)
    ".json": "application/json",  # its band spec
}
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.(?:js|css|svg|png|json)$")
# blob: images are the uploaded file and results fetched with the API key; nothing else leaves.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def read_asset(name: str) -> bytes | None:
    """The bytes of ``static/<name>``, or None if there is no such packaged file."""
    item = resources.files("service.api.web").joinpath("static", name)
    return item.read_bytes() if item.is_file() else None


def _serve(name: str) -> Response:
    data = read_asset(name)
    if data is None:
        raise ApiProblem(404, "not_found", f"no asset {name!r}")
    suffix = name[name.rfind(".") :]
    return Response(data, media_type=CONTENT_TYPES[suffix], headers=SECURITY_HEADERS)


@router.get("/")
def index() -> Response:
    return _serve("index.html")


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers and tools ask for ``/favicon.ico`` whatever the page links: the same icon."""
    return _serve("favicon.svg")


@router.get("/static/{name}")
def asset(name: str) -> Response:
    if not _ASSET_NAME.match(name):
        raise ApiProblem(404, "not_found", f"no asset {name!r}")
    return _serve(name)
