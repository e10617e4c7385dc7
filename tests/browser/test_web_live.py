"""The page's newer parts in headless Chromium against the real stack: the method list from
``GET /v1/methods``, several models at once, "try an example" (spectrum, detected bands and a
restoration in one click) followed live through ``GET /v1/jobs/{id}/events`` (no polling), the
live preview a running restoration's stream announces (shown until the result replaces it), the
result's warnings, per-region actions and downloads, and the Jobs view read from ``GET /v1/jobs``
(filters, pages, nothing lost on a reload)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sagd_core.restore.request import METHOD_SUMMARIES, METHODS
from service.api.context import AppContext
from service.api.web.make_example import SIDE
from service.jobs.images import encode_png
from service.jobs.storage import PREVIEW_FILE, Storage
from tests.browser.conftest import Ui
from tests.browser.test_web_page import (
    FAKE_MODEL,
    FORM_FIELDS,
    LONG,
    clear_regions,
    corrupted_image,
    register_fake_model,
    upload,
)
from tests.harness import Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SLOW_STEPS = 30  # fake 50 ms steps before the restoration: 1.5 s of progress to follow

# Every text #progress-text shows, in order (a restoration's progress passes too fast to poll).
RECORD_PROGRESS = """() => {
  const node = document.querySelector("#progress-text");
  window.progressSeen = [];
  new MutationObserver(() => window.progressSeen.push(node.textContent))
    .observe(node, { childList: true, characterData: true, subtree: true });
}"""


def test_method_list_comes_from_the_api(ui: Ui, stack: Stack) -> None:
    from playwright.sync_api import expect

    page = ui.page
    page.goto("/")
    options = page.locator("#method option")
    expect(options).to_have_count(len(METHODS))
    expect(options.first).to_contain_text(METHOD_SUMMARIES["auto"])
    served = stack.client.get("/v1/methods").json()
    for method in served:
        option = page.locator(f"#method option[value={method['name']}]")
        expect(option).to_contain_text(f"{method['name']}: {method['summary']}")
    assert page.locator("#method").input_value() == "auto"
    expect(page.locator("#method-summary")).to_have_text(METHOD_SUMMARIES["auto"])
    page.select_option("#method", "sagd")
    expect(page.locator("#method-summary")).to_have_text(METHOD_SUMMARIES["sagd"])
    expect(page.locator("#model")).to_be_enabled()  # sagd needs a model
    page.select_option("#method", "classical")
    expect(page.locator("#model")).to_be_disabled()
    assert ui.errors == []


def test_several_models_can_be_chosen(ui: Ui, stack: Stack, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    register_fake_model(stack, tmp_path)
    page = ui.page
    page.goto("/")
    page.select_option("#method", "sagd")
    expect(page.locator(f"#model option[value='{FAKE_MODEL}:2']")).to_have_count(1)
    assert "model" not in page.evaluate(FORM_FIELDS)  # none chosen: the server's default
    page.select_option("#model", [FAKE_MODEL, f"{FAKE_MODEL}:1"])
    assert page.evaluate(FORM_FIELDS)["model"] == f"{FAKE_MODEL},{FAKE_MODEL}:1"
    page.click(".tab[data-view=models]")
    page.click("#models-refresh")  # refilling the list keeps the choice
    expect(page.locator("#models section.model").first).to_be_visible()
    page.click(".tab[data-view=restore]")
    assert page.evaluate(FORM_FIELDS)["model"] == f"{FAKE_MODEL},{FAKE_MODEL}:1"
    assert ui.errors == []


def test_try_an_example_restores_it_followed_live(
    ui: Ui, stack: Stack, artifacts: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = ui.page
    requests: list[tuple[str, str]] = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    page.goto("/")
    page.evaluate(RECORD_PROGRESS)
    stack.slow(SLOW_STEPS)
    try:
        page.click("#try-example")
        expect(page.locator("#result")).to_be_visible(timeout=LONG)
    finally:
        stack.slow(0)
    expect(page.locator("#input-caption")).to_contain_text(f"{SIDE}×{SIDE} pixels")
    expect(page.locator("#progress-text")).to_contain_text("succeeded")
    ui.shot("example-result")

    # The spectrum was drawn (not the empty placeholder) and the bands were detected or taken
    # from the example's spec.
    spec = json.loads(page.locator("#spec-json").text_content() or "{}")
    assert len(spec["regions"]) >= 1
    spectrum_pixels = page.evaluate(
        """() => { const c = document.querySelector('#spectrum');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set(); for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i]);
        return seen.size; }"""
    )
    assert spectrum_pixels > 20  # a spectrum has many grey levels; the placeholder two or three

    # Live progress came from the event stream, step by step, and the page never polled.
    job = stack.client.get("/v1/jobs", params={"kind": "restore", "limit": 1}).json()["items"][0]
    assert job["state"] == "succeeded"
    job_url = f"/v1/jobs/{job['id']}"
    assert ("GET", f"{ui.page.url.rstrip('/')}{job_url}/events?preview=1") in requests
    assert not [url for method, url in requests if url.endswith(job_url)]
    assert page.locator("#progress-text").get_attribute("data-source") == "events"
    seen = page.evaluate("window.progressSeen")
    steps = {int(m.group(1)) for text in seen if (m := re.search(r"step (\d+) of ", text))}
    assert any(0 < step < SLOW_STEPS for step in steps), seen

    # What was done to each region, from the report; both downloads.
    rows = page.locator("#band-actions tbody tr")
    expect(rows).to_have_count(len(spec["regions"]))
    expect(page.locator("#result-method")).to_contain_text("Method: auto")
    with page.expect_download() as report_download:
        page.click("#report-link")
    report_path = artifacts / f"{ui.name}-report.json"
    report_download.value.save_as(report_path)
    report = json.loads(report_path.read_text())
    assert [b["action"] for b in report["bands"]] == [
        rows.nth(i).locator("td.action").inner_text() for i in range(rows.count())
    ]
    assert report["bands"] and job["result"]["band_actions"] == [
        b["action"] for b in report["bands"]
    ]
    with page.expect_download() as image_download:
        page.click("#download")
    image_path = artifacts / f"{ui.name}-restored.png"
    image_download.value.save_as(image_path)
    assert Image.open(image_path).size == (SIDE, SIDE)

    # A reload loses nothing: the Jobs view reads the job back from GET /v1/jobs.
    page.reload()
    page.click(".tab[data-view=jobs]")
    row = page.locator(f"#jobs-table tbody tr:has(td[title='{job['id']}'])")
    expect(row.locator("td.state")).to_have_text("succeeded")
    expect(
        row.get_by_role("button", name=f"Download the report of job {job['id'][:8]}")
    ).to_be_visible()
    assert ui.errors == []


def test_a_running_restorations_preview_is_shown_until_the_result(
    ui: Ui, stack: Stack, tmp_path: Path
) -> None:
    """The preview file stands in for the worker's (a notch restoration writes none; the worker
    writing them is tests/integration/test_preview_e2e.py): the page follows the stream's
    ``preview`` event, fetches the image and shows it while the job runs."""
    from playwright.sync_api import expect

    page = ui.page
    upload(ui, corrupted_image(tmp_path / "p.png"))
    clear_regions(ui)
    page.click("[data-add=notch]")
    page.select_option("#method", "notch")
    stack.slow(60)  # 3 s of fake steps (the stack's soft limit: 4 s): time to write a preview
    try:
        with page.expect_response(lambda r: r.url.endswith("/v1/restorations")) as submitted:
            page.click("#run")
        job_id = submitted.value.json()["id"]
        stack.wait_running(job_id, step=1)
        preview = encode_png(np.linspace(0, 1, 24 * 40).reshape(24, 40), 8)
        folder = stack.storage / "jobs" / job_id
        Storage(stack.storage).write_job_files(folder, {PREVIEW_FILE: preview})
        expect(page.locator("#live")).to_be_visible(timeout=LONG)
        expect(page.locator("#live-caption")).to_contain_text("Preview 1 (40×24 pixels)")
        loaded = "() => document.querySelector('#live-preview').naturalWidth"
        page.wait_for_function(f"({loaded})() === 40")
        ui.shot("live-preview")
        assert page.locator("#result").is_hidden()
    finally:
        stack.slow(0)
    expect(page.locator("#result")).to_be_visible(timeout=LONG)
    expect(page.locator("#live")).to_be_hidden()
    assert ui.errors == []


def test_warnings_are_shown_next_to_the_result(ui: Ui, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = ui.page
    upload(ui, corrupted_image(tmp_path / "w.png"))
    clear_regions(ui)
    page.click("[data-add=notch]")
    page.select_option("#method", "classical")
    page.fill("#samples", "2")  # the classical tier is deterministic: the report warns
    assert page.locator("#warnings-box").is_hidden()
    page.click("#run")
    expect(page.locator("#result")).to_be_visible(timeout=LONG)
    box = page.locator("#warnings-box")
    expect(box).to_be_visible()
    expect(box.locator("li")).to_contain_text(["samples > 1 gives no uncertainty map"])
    expect(page.locator("#band-actions tbody tr")).to_have_count(1)
    ui.shot("warnings")
    assert ui.errors == []


def test_jobs_view_filters_and_pages(ui: Ui, stack: Stack) -> None:
    from playwright.sync_api import expect

    ctx: AppContext = stack.client.app.state.ctx  # type: ignore[attr-defined]
    made = []
    for _ in range(23):  # cancelled at once: no worker runs them
        job_id = uuid.uuid4()
        ctx.jobs.create(job_id, kind="restore", owner="anonymous", params={})
        assert ctx.jobs.request_cancel(job_id) == "cancelled"
        made.append(str(job_id))
    page = ui.page
    page.goto("/")
    page.click(".tab[data-view=jobs]")
    expect(page.locator(f"#jobs-table td[title='{made[-1]}']")).to_have_count(1)
    page.select_option("#jobs-state", "cancelled")
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(20)
    expect(rows.locator("td.state")).to_have_text([re.compile(r"^cancelled")] * 20)
    newest_first = [rows.nth(i).locator("td").first.get_attribute("title") for i in range(3)]
    assert newest_first == made[::-1][:3]
    expect(page.locator("#jobs-newer")).to_be_disabled()
    page.click("#jobs-older")
    expect(page.locator("#jobs-page")).to_have_text("page 2")
    expect(page.locator(f"#jobs-table td[title='{made[0]}']")).to_have_count(1)
    expect(page.locator(f"#jobs-table td[title='{made[-1]}']")).to_have_count(0)
    page.click("#jobs-newer")
    expect(page.locator(f"#jobs-table td[title='{made[-1]}']")).to_have_count(1)
    page.select_option("#jobs-kind", "train")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("No jobs match.")
    assert ui.errors == []
