"""End to end in headless Chromium: upload, edit bands, restore (notch) with a real worker, see
the result, download it; the jobs, batches and models views; API errors on the page."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.api.app import create_app
from service.jobs.registry import ModelRegistry
from service.jobs.storage import Storage
from service.settings import Settings, hash_api_key
from tests.browser.conftest import Ui, serve
from tests.harness import Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]

HEIGHT, WIDTH = 96, 128
PEAK = (12, 24)  # interference at (fy, fx) = (12/96, 24/128) = (0.125, 0.1875) cycles/pixel
CANVAS = 384  # the spectrum canvas's internal size (index.html)
LONG = 60_000  # ms: a restoration on a shared 2-core machine
FAKE_MODEL = "web-ui-test"


def corrupted_image(path: Path, seed: int = 0) -> Path:
    """A smooth picture plus a strong sinusoid: one conjugate pair of peaks at ``PEAK``."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(float)
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi)
    base = 128 + 50 * np.sin(x / 17 + phase) * np.cos(y / 23)
    base += 40 * np.exp(-((x - 80) ** 2 + (y - 40) ** 2) / 300)
    stripes = 25 * np.cos(2 * np.pi * (PEAK[0] * y / HEIGHT + PEAK[1] * x / WIDTH))
    pixels = np.clip(base + stripes, 0, 255).astype(np.uint8)
    Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(path)
    return path


def peak_share(image: Image.Image) -> float:
    """Fraction of the (mean-removed) luma energy in the interference bins."""
    luma = np.asarray(image.convert("L"), dtype=float)
    power = np.abs(np.fft.fft2(luma - luma.mean())) ** 2
    return float(power[PEAK] + power[-PEAK[0], -PEAK[1]]) / float(power.sum())


def canvas_point(ui: Ui, fy: float, fx: float) -> tuple[float, float]:
    """Page coordinates of frequency (fy, fx) on the spectrum (one 96×128 tile, fftshifted)."""
    box = ui.page.locator("#spectrum").bounding_box()
    assert box is not None
    cx = (fx * WIDTH + WIDTH // 2 + 0.5) * CANVAS / WIDTH
    cy = (fy * HEIGHT + HEIGHT // 2 + 0.5) * CANVAS / HEIGHT
    return box["x"] + cx * box["width"] / CANVAS, box["y"] + cy * box["height"] / CANVAS


DROP_FILE = """([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "image/png" }));
  return transfer;
}"""


def upload(ui: Ui, image: Path, *, drop: bool = False) -> None:
    """Load the page and give it an image, through the file picker or by drag-and-drop."""
    from playwright.sync_api import expect

    ui.page.goto("/")
    if drop:
        payload = [base64.b64encode(image.read_bytes()).decode(), image.name]
        transfer = ui.page.evaluate_handle(DROP_FILE, payload)
        ui.page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    else:
        ui.page.set_input_files("#file", str(image))
    expect(ui.page.locator("#input-caption")).to_contain_text(f"{WIDTH}×{HEIGHT} pixels")
    # Settled: proposals from POST /v1/analyze, "found none", or "no worker can analyze".
    expect(ui.page.locator("#analysis-note")).not_to_contain_text("Analyzing", timeout=LONG)


def clear_regions(ui: Ui) -> None:
    remove = ui.page.locator("#regions .remove")
    while remove.count():
        remove.first.click()


def field(ui: Ui, region: int, name: str) -> float:
    return float(ui.page.locator(f"#region-{region}-{name}").input_value())


def test_restore_flow(ui: Ui, artifacts: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = ui.page
    source = corrupted_image(tmp_path / "interference.png")
    upload(ui, source)
    ui.shot("1-uploaded")
    clear_regions(ui)
    expect(page.locator("#run")).to_be_disabled()

    # Click one bin beside the peak: the page snaps to the brightest bin, the true peak.
    page.mouse.click(*canvas_point(ui, PEAK[0] / HEIGHT, (PEAK[1] + 1) / WIDTH))
    assert field(ui, 0, "fy") == pytest.approx(PEAK[0] / HEIGHT, abs=1e-3)
    assert field(ui, 0, "fx") == pytest.approx(PEAK[1] / WIDTH, abs=1e-3)
    item = page.locator("#regions li").first
    expect(item).to_contain_text("= 12 cycles/image")  # fy · H
    expect(item).to_contain_text("= 24 cycles/image")  # fx · W
    spec = json.loads(page.locator("#spec-json").text_content() or "{}")
    assert [r["kind"] for r in spec["regions"]] == ["notch"]
    ui.shot("2-band")

    page.select_option("#method", "notch")
    expect(page.locator("#model")).to_be_disabled()
    page.click("#run")
    expect(page.locator("#result")).to_be_visible(timeout=LONG)
    expect(page.locator("#progress-text")).to_contain_text("succeeded")
    expect(page.locator("#status")).to_contain_text("succeeded")
    assert page.eval_on_selector("#after", "img => img.naturalWidth") == WIDTH
    expect(page.locator("#report")).to_contain_text("method")
    page.fill("#split", "20")
    ui.shot("3-result")

    with page.expect_download() as download:
        page.click("#download")
    saved = artifacts / f"{ui.name}-restored.png"
    download.value.save_as(saved)
    restored = Image.open(saved)
    assert restored.size == (WIDTH, HEIGHT)
    # The notch removed the interference the page located.
    assert peak_share(restored) < 0.01 * peak_share(Image.open(source))

    page.click(".tab[data-view=jobs]")
    row = page.locator("#jobs-table tbody tr").first  # newest first
    expect(row.locator("td.state")).to_have_text("succeeded")
    job_title = row.locator("td").first.get_attribute("title")
    # The list comes from GET /v1/jobs, not from this tab's memory: a fresh tab still shows it.
    page.evaluate("sessionStorage.clear()")
    page.click(".tab[data-view=restore]")
    page.click(".tab[data-view=jobs]")
    expect(page.locator(f"#jobs-table tbody td[title='{job_title}']")).to_have_count(1)
    assert ui.errors == []


def test_drop_then_draw_and_edit_regions(ui: Ui, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = ui.page
    upload(ui, corrupted_image(tmp_path / "a.png"), drop=True)
    expect(page.locator("#input-caption")).to_contain_text("a.png")
    clear_regions(ui)

    page.check("input[name=mode][value=annulus]")
    page.mouse.move(*canvas_point(ui, 0.0, 0.1))
    page.mouse.down()
    page.mouse.move(*canvas_point(ui, 0.0, 0.2), steps=4)
    page.mouse.move(*canvas_point(ui, 0.0, 0.3), steps=4)
    page.mouse.up()
    assert field(ui, 0, "low") == pytest.approx(0.1, abs=0.01)
    assert field(ui, 0, "high") == pytest.approx(0.3, abs=0.01)

    page.check("input[name=mode][value=wedge]")
    page.mouse.move(*canvas_point(ui, 0.1, 0.1))
    page.mouse.down()
    page.mouse.move(*canvas_point(ui, 0.3, 0.3), steps=6)
    page.mouse.up()
    assert field(ui, 1, "angle_deg") == pytest.approx(45, abs=2)
    assert field(ui, 1, "low") == pytest.approx(0.1 * 2**0.5, abs=0.01)

    # Keyboard only: an "Add" button, then type into the focused field.
    page.locator("[data-add=box]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#region-2-fy0")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.05")
    spec = json.loads(page.locator("#spec-json").text_content() or "{}")
    assert spec["regions"][2] == {"kind": "box", "fy": [0.05, 0.3], "fx": [0.2, 0.3]}
    ui.shot("regions")

    page.get_by_role("button", name="Remove region 1 (annulus)").click()
    spec = json.loads(page.locator("#spec-json").text_content() or "{}")
    assert [r["kind"] for r in spec["regions"]] == ["wedge", "box"]
    assert ui.errors == []


def test_api_error_is_shown(ui: Ui, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = ui.page
    upload(ui, corrupted_image(tmp_path / "b.png"))
    clear_regions(ui)
    page.click("[data-add=annulus]")
    page.fill("#region-0-low", "0")  # covers DC: ill-posed, the API refuses it
    page.click("#run")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("422 ill_posed_band")
    expect(error).to_contain_text("request id")
    expect(page.locator("[role=alert]")).to_have_count(1)
    ui.shot("error")
    assert ui.errors == []


FORM_FIELDS = """async () => {
  const { runFields } = await import("/static/restore.js");  // the page's own module instance
  return Object.fromEntries(runFields(new FormData()));
}"""


def test_schedule_is_sent_with_learned_methods_only(ui: Ui, tmp_path: Path) -> None:
    page = ui.page
    upload(ui, corrupted_image(tmp_path / "s.png"))
    assert page.locator("#schedule").is_disabled()  # notch: no schedule
    page.select_option("#method", "ddnm")
    assert page.locator("#schedule").is_enabled()
    page.select_option("#schedule", "cosine")
    # The fields the page posts (Chromium hides multipart bodies with files from the driver).
    fields = page.evaluate(FORM_FIELDS)
    assert fields["schedule"] == "cosine" and fields["method"] == "ddnm"
    page.select_option("#method", "notch")
    assert page.locator("#schedule").is_disabled()
    assert "schedule" not in page.evaluate(FORM_FIELDS)


def test_auto_takes_an_optional_model_before_and_after_the_method_list(
    ui: Ui, stack: Stack, tmp_path: Path
) -> None:
    """auto needs no model but takes one: the model list is enabled for it (none chosen: none is
    sent, not the server's default) and the schedule is not; notch and classical take none.
    The same with the page's built-in method sets (``GET /v1/methods`` not answered) and with
    the list the API sends (``needs_model``, ``takes_model``)."""
    from playwright.sync_api import expect

    from sagd_core.restore.request import METHOD_SUMMARIES

    register_fake_model(stack, tmp_path)
    page = ui.page
    page.route("**/v1/methods", lambda route: route.abort())
    for answered in (False, True):
        page.goto("/")
        expect(page.locator(f"#model option[value='{FAKE_MODEL}:1']")).to_have_count(1)
        if answered:  # the API's list has replaced the page's own
            expect(page.locator("#method option").first).to_contain_text(METHOD_SUMMARIES["auto"])
        page.select_option("#method", "auto")
        expect(page.locator("#model")).to_be_enabled()
        expect(page.locator("#schedule")).to_be_disabled()
        assert "model" not in page.evaluate(FORM_FIELDS)  # none chosen: no model at all
        page.select_option("#model", f"{FAKE_MODEL}:1")
        fields = page.evaluate(FORM_FIELDS)
        assert fields["method"] == "auto" and fields["model"] == f"{FAKE_MODEL}:1", fields
        assert "schedule" not in fields
        for method in ("notch", "classical"):
            page.select_option("#method", method)
            expect(page.locator("#model")).to_be_disabled()
            assert "model" not in page.evaluate(FORM_FIELDS), method
        page.select_option("#method", "sagd")
        expect(page.locator("#model")).to_be_enabled()
        expect(page.locator("#schedule")).to_be_enabled()
        page.unroute("**/v1/methods")
    assert ui.errors == []


def test_batch_jobs_and_models_views(ui: Ui, stack: Stack, artifacts: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = ui.page
    upload(ui, corrupted_image(tmp_path / "c.png"))
    clear_regions(ui)
    page.click("[data-add=notch]")  # defaults: a valid notch pair

    page.click(".tab[data-view=jobs]")
    expect(page.locator(".tab[data-view=jobs]")).to_have_attribute("aria-current", "page")
    files = [str(corrupted_image(tmp_path / f"batch{i}.png", seed=i)) for i in range(2)]
    page.set_input_files("#batch-files", files)
    page.click("#batch-form button[type=submit]")
    batch = page.locator("#batches .batch")
    expect(batch).to_have_count(1)
    expect(batch.locator("tbody tr")).to_have_count(2)
    expect(batch.locator("h4")).to_contain_text("succeeded", timeout=LONG)
    expect(batch.locator("td.state.succeeded")).to_have_count(2)
    ui.shot("jobs")
    with page.expect_download() as download:
        batch.get_by_role("button", name="Download").click()
    saved = artifacts / f"{ui.name}-batch.zip"
    download.value.save_as(saved)
    names = zipfile.ZipFile(io.BytesIO(saved.read_bytes())).namelist()
    assert "manifest.json" in names and len([n for n in names if n.endswith(".png")]) == 2

    register_fake_model(stack, tmp_path)
    page.click(".tab[data-view=models]")
    expect(page.locator("#view-models")).to_be_visible()
    expect(page.locator("#view-jobs")).to_be_hidden()
    expect(page.locator("#models section.model")).to_have_count(
        len(stack.client.get("/v1/models").json())
    )
    model = page.get_by_role("region", name=f"Model {FAKE_MODEL}")
    expect(model.locator("h3")).to_contain_text("default version 2")
    expect(model.locator("tbody tr")).to_have_count(2)
    ui.shot("models")
    model.get_by_role("button", name=f"Make version 1 the default of {FAKE_MODEL}").click()
    expect(model.locator("h3")).to_contain_text("default version 1")
    assert stack.client.get(f"/v1/models/{FAKE_MODEL}").json()["default_version"] == 1
    page.click(".tab[data-view=restore]")
    expect(page.locator(f"#model option[value='{FAKE_MODEL}:1']")).to_have_count(1)
    assert ui.errors == []


def register_fake_model(stack: Stack, tmp_path: Path) -> None:
    """Two registry versions of a model that is never run (only the registry view reads it)."""
    registry = ModelRegistry(Storage(stack.storage))
    if any(m.name == FAKE_MODEL for m in registry.list_models()):
        return
    for i in (1, 2):
        staged = tmp_path / f"staged-{i}"
        staged.mkdir()
        (staged / "README").write_text("not a checkpoint: a registry entry for the page test")
        registry.add_version(
            FAKE_MODEL,
            staged,
            {
                "kind": "band",
                "band": {"regions": [{"kind": "annulus", "low": 0.15, "high": 0.3}]},
                "data_hash": f"{i}" * 64,
                "scores": {"final_loss": 0.5 / i},
            },
        )


def test_api_key_is_asked_for_and_kept_in_the_tab(ui: Ui, stack: Stack, tmp_path: Path) -> None:
    """With keys configured, the page shows the 401, asks for a key, keeps it for the tab."""
    from playwright.sync_api import expect

    key = "browser-test-key"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        storage_root=stack.storage,
        redis_url=stack.redis.url,
        api_keys=[hash_api_key(key)],
    )
    register_fake_model(stack, tmp_path)
    page = ui.page
    with serve(create_app(settings)) as url:
        page.goto(f"{url}/")
        expect(page.locator("#error")).to_contain_text("401")
        expect(page.locator("#key-box")).to_have_attribute("open", "")
        expect(page.locator("#api-key")).to_be_focused()
        ui.shot("key-asked")
        page.keyboard.type(key)
        page.keyboard.press("Enter")
        expect(page.locator("#status")).to_contain_text("API key set")
        expect(page.locator("#error")).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('sagd.apiKey')") == key
        page.reload()
        page.click(".tab[data-view=models]")
        expect(page.locator("#models section.model").first).to_be_visible()
        expect(page.locator("#error")).to_be_hidden()
    assert ui.errors == []
