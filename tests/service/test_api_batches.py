"""/v1/batches: files and zips, per-item status, the result zip."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from uuid import UUID

import numpy as np
from fastapi.testclient import TestClient

from service.api.context import AppContext
from service.jobs.contracts import TASK_RESTORE, TASK_RESTORE_MANY
from service.jobs.images import encode_png
from service.settings import Settings
from tests.harness import BAND_JSON, FakeQueue, make_zip, png_bytes, restore_form


def test_batch_of_files_and_zip(client: TestClient, queue: FakeQueue) -> None:
    archive = make_zip(
        {
            "a/one.png": png_bytes(seed=1),
            "notes.txt": b"not an image",
            "__MACOSX/._one.png": b"junk",
            "sub/": b"",
            "two.png": png_bytes(seed=2),
        }
    )
    files = [
        ("images", ("first.png", png_bytes(seed=3), "image/png")),
        ("images", ("../../etc/passwd.png", png_bytes(seed=4), "image/png")),
        ("archive", ("batch.zip", archive, "application/zip")),
    ]
    response = client.post("/v1/batches", files=files, data=restore_form())
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/batches/{body['id']}"
    assert [item["name"] for item in body["items"]] == ["first", "passwd", "one", "two"]
    assert body["state"] == "queued" and body["counts"]["queued"] == 4
    # notch items are micro-batched: all four in one task, in order
    assert queue.sent == []
    assert queue.chunks == [(TASK_RESTORE_MANY, [UUID(i["job_id"]) for i in body["items"]])]
    status = client.get(f"/v1/batches/{body['id']}").json()
    assert [i["job_id"] for i in status["items"]] == [i["job_id"] for i in body["items"]]


def test_batch_chunks_follow_item_and_pixel_caps(
    client: TestClient, queue: FakeQueue, settings: Settings
) -> None:
    settings.batch_chunk_items = 3
    settings.batch_chunk_pixels = 4 * 24 * 32  # four of the 24x32 test images
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(7)]
    body = client.post("/v1/batches", files=files, data=restore_form()).json()
    ids = [UUID(i["job_id"]) for i in body["items"]]
    assert [ids for _, ids in queue.chunks] == [ids[0:3], ids[3:6]]
    assert queue.sent == [(TASK_RESTORE, ids[6])]  # a chunk of one is a plain task
    queue.chunks.clear()
    queue.sent.clear()
    settings.batch_chunk_items = 100
    settings.batch_chunk_pixels = 3 * 24 * 32  # below the first chunk's 4 items
    client.post("/v1/batches", files=files[:5], data=restore_form())
    assert [len(ids) for _, ids in queue.chunks] == [3, 2] and queue.sent == []


def test_batch_chunks_ramp_up_to_the_item_cap(
    client: TestClient, queue: FakeQueue, settings: Settings
) -> None:
    """The first chunk is small, so a worker starts while the rest is staged; chunks double up
    to the cap."""
    settings.batch_chunk_items = 16
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(50)]
    body = client.post("/v1/batches", files=files, data=restore_form()).json()
    ids = [UUID(i["job_id"]) for i in body["items"]]
    assert [len(chunk) for _, chunk in queue.chunks] == [4, 8, 16, 16, 6]
    assert [j for _, chunk in queue.chunks for j in chunk] == ids  # in order, each once


def test_learned_batch_items_go_one_per_task(
    client: TestClient, queue: FakeQueue, tmp_path: Path
) -> None:
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    staged = tmp_path / "stage"
    staged.mkdir()
    (staged / "config.json").write_text("{}")
    ctx.models.add_version("default", staged, {"kind": "band", "band": json.loads(BAND_JSON)})
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    response = client.post("/v1/batches", files=files, data=restore_form(method="sagd"))
    assert response.status_code == 202, response.text
    assert queue.chunks == [] and [task for task, _ in queue.sent] == [TASK_RESTORE] * 3


def test_refused_chunk_leaves_nothing_behind(client: TestClient, queue: FakeQueue) -> None:
    queue.fail = True
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    response = client.post("/v1/batches", files=files, data=restore_form())
    assert response.status_code == 503
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    assert list(ctx.jobs.r.scan_iter("sagd:job:*")) == []  # records come with their task or not
    assert not any((ctx.storage.root / "jobs").iterdir())  # the staged inputs are gone too


def test_batch_result_zip_after_all_items_finish(client: TestClient) -> None:
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    body = client.post("/v1/batches", files=files, data=restore_form()).json()
    batch_id = body["id"]
    assert client.get(f"/v1/batches/{batch_id}/result").status_code == 409
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    pixels = np.full((24, 32, 3), 0.5, dtype=np.float32)
    ids = [UUID(item["job_id"]) for item in body["items"]]
    for job_id in ids[:2]:
        ctx.jobs.claim(job_id, 3)
        ctx.storage.write_bytes(ctx.storage.job_file(job_id, "result.png"), encode_png(pixels, 8))
        ctx.jobs.finish(job_id, "succeeded")
    ctx.jobs.claim(ids[2], 3)
    assert client.get(f"/v1/batches/{batch_id}").json()["state"] == "running"
    ctx.jobs.fail(ids[2], "rejected", "bad")
    status = client.get(f"/v1/batches/{batch_id}").json()
    assert status["state"] == "succeeded"
    assert status["counts"]["succeeded"] == 2 and status["counts"]["failed"] == 1
    result = client.get(f"/v1/batches/{batch_id}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert names == ["0000-0.png", "0001-1.png", "manifest.json"]
    assert manifest["items"][2]["error"]["code"] == "rejected"


def test_batch_errors(client: TestClient, settings: object) -> None:
    assert client.post("/v1/batches", data=restore_form()).status_code == 422
    escape = make_zip({"../evil.png": png_bytes()})
    response = client.post(
        "/v1/batches", files={"archive": ("a.zip", escape, "application/zip")}, data=restore_form()
    )
    assert response.status_code == 422 and "escapes" in response.json()["message"]
    not_zip = client.post(
        "/v1/batches",
        files={"archive": ("a.zip", b"PK\x03\x04junk", "application/zip")},
        data=restore_form(),
    )
    assert not_zip.status_code == 422 and not_zip.json()["code"] == "invalid_archive"
    no_images = make_zip({"a.txt": b"hello"})
    response = client.post(
        "/v1/batches",
        files={"archive": ("a.zip", no_images, "application/zip")},
        data=restore_form(),
    )
    assert response.status_code == 422
    bad_item = [
        ("images", ("ok.png", png_bytes(), "image/png")),
        ("images", ("bad.png", b"\x89PNG\r\n\x1a\n broken", "image/png")),
    ]
    response = client.post("/v1/batches", files=bad_item, data=restore_form())
    assert response.status_code == 422 and "item 1 (bad)" in response.json()["message"]


def test_batch_cap(tmp_path: object, redis_url: str) -> None:
    from pathlib import Path

    from service.api.app import create_app
    from tests.harness import make_settings

    settings = make_settings(Path(str(tmp_path)), redis_url, max_batch_items=2)
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    with TestClient(create_app(settings, queue=FakeQueue())) as small:
        response = small.post("/v1/batches", files=files, data=restore_form())
        assert response.status_code == 422 and response.json()["code"] == "batch_too_large"


def test_cancel_batch(client: TestClient, queue: FakeQueue) -> None:
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    body = client.post("/v1/batches", files=files, data=restore_form()).json()
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    first = UUID(body["items"][0]["job_id"])
    ctx.jobs.claim(first, 3)  # running
    response = client.delete(f"/v1/batches/{body['id']}")
    assert response.status_code == 202
    states = [item["state"] for item in response.json()["items"]]
    assert states == ["running", "cancelled", "cancelled"]
    assert ctx.jobs.cancel_requested(first)
    assert len(queue.revoked) == 2


def test_other_owner_cannot_see_batch(client: TestClient) -> None:
    files = [("images", ("0.png", png_bytes(), "image/png"))]
    batch_id = client.post("/v1/batches", files=files, data=restore_form()).json()["id"]
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    assert ctx.jobs.get_batch(UUID(batch_id), "someone-else") is None
    assert client.get(f"/v1/batches/{UUID(int=1)}").status_code == 404


def test_a_refused_item_cancels_the_chunks_already_queued(
    client: TestClient, queue: FakeQueue, settings: Settings
) -> None:
    settings.batch_chunk_items = 2
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(5)]
    files.insert(4, ("images", ("bad.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")))
    response = client.post("/v1/batches", files=files, data=restore_form())
    assert response.status_code == 422 and "item 4" in response.json()["message"]
    # two chunks went out before item 4 was read; their jobs are cancelled with the reason
    sent = [job_id for _, ids in queue.chunks for job_id in ids]
    assert len(queue.chunks) == 2 and len(sent) == 4
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    for job_id in sent:
        job = ctx.jobs.get(job_id) or {}
        assert job["state"] == "cancelled"
        assert job["error_message"].startswith("batch refused: item 4")
        assert not ctx.storage.job_dir(job_id).exists()
    assert client.get("/v1/batches").json()["items"] == []
    jobs_dir = ctx.storage.root / "jobs"
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []


def test_items_keep_their_own_bit_depth_and_chunks_do_not_mix_them(
    client: TestClient, queue: FakeQueue
) -> None:
    deep = encode_png(np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32), 16)
    files = [
        ("images", ("a.png", png_bytes(seed=1), "image/png")),
        ("images", ("b.png", png_bytes(seed=2), "image/png")),
        ("images", ("c.png", deep, "image/png")),
    ]
    body = client.post("/v1/batches", files=files, data=restore_form()).json()
    ids = [UUID(i["job_id"]) for i in body["items"]]
    assert queue.chunks == [(TASK_RESTORE_MANY, ids[:2])] and queue.sent == [(TASK_RESTORE, ids[2])]
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    depths = [ctx.jobs.params(ctx.jobs.get(i) or {})["output_bit_depth"] for i in ids]
    assert depths == [8, 8, 16]
