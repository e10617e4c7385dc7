"""Headless Chromium against the real stack: Debian's ``chromium`` driven by Playwright.

The stack is an end-to-end one (``e2e_stack`` of ``tests/harness.py``: a real Redis, a real
Celery worker, the real app), served here over real HTTP by uvicorn in a thread so that a
browser can reach it. Never ``playwright install``: the browser is the system's
(``scripts/ensure_browser.sh``). Without one these tests FAIL loudly; ``SAGD_SKIP_BROWSER=1``
turns that into a loud skip.
Screenshots and downloads go to ``$SAGD_TEST_ARTIFACTS/browser`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.harness import REPO, Stack, e2e_stack, free_port

__all__ = ["e2e_stack"]  # a stack of this directory's own, as the integration tests have

CHROMIUM = Path(os.environ.get("SAGD_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BANNER = "!" * 78


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the Python package 'playwright' is missing (pip install -e '.[dev]')"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return (
            f"no Chromium at {CHROMIUM}: run scripts/ensure_browser.sh as root "
            "(apt-get install -y chromium chromium-driver) or set SAGD_CHROMIUM"
        )
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    problem = browser_problem()
    if problem is None:
        return CHROMIUM
    message = f"\n{BANNER}\nBROWSER TESTS CANNOT RUN: {problem}\n{BANNER}"
    if os.environ.get("SAGD_SKIP_BROWSER") == "1":
        pytest.skip(f"SAGD_SKIP_BROWSER=1, skipping: {message}")
    pytest.fail(f"{message}\n(set SAGD_SKIP_BROWSER=1 to skip instead)", pytrace=False)


@pytest.fixture(scope="session")
def stack(e2e_stack: Stack) -> Stack:
    """The end-to-end stack, under the name the browser tests use."""
    return e2e_stack


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free loopback port; yields its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start for the browser tests")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_url(chromium: Path, stack: Stack) -> Iterator[str]:
    """The integration stack's app over HTTP."""
    with serve(stack.client.app) as url:  # the in-process stack's client is a TestClient
        yield url


@pytest.fixture(scope="session")
def artifacts() -> Path:
    root = Path(os.environ.get("SAGD_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path = root / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Ui:
    """A page on the live service, the JavaScript errors it raised, and screenshots."""

    page: Any  # playwright.sync_api.Page (imported lazily: the package may be missing)
    artifacts: Path
    name: str
    errors: list[str] = field(default_factory=list)

    def shot(self, label: str) -> Path:
        path = self.artifacts / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def ui(
    chromium: Path, live_url: str, artifacts: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Ui]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir per test
            executable_path=str(chromium),
            headless=True,
            args=LAUNCH_ARGS,
            base_url=live_url,
            accept_downloads=True,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        ui = Ui(page=page, artifacts=artifacts, name=request.node.name)
        page.on("pageerror", lambda exc: ui.errors.append(str(exc)))
        try:
            yield ui
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                ui.shot("failure")
            context.close()
