"""Learned restorations refused at submit (422) when their models cannot do the work: no model
that can fill the band (``model_cannot_fill_band``), or one trained on other channels than the
image's (``model_channel_mismatch``); single uploads and batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

from fastapi.testclient import TestClient
from httpx import Response

from service.api.context import AppContext
from service.jobs.contracts import TASK_RESTORE
from tests.harness import FakeQueue, png_bytes, restore_form

GRAY = "L"


def ctx_of(client: TestClient) -> AppContext:
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def register(
    client: TestClient,
    tmp_path: Path,
    name: str,
    *,
    kind: str | None = None,
    channels: int | None = None,
    config: dict[str, Any] | None = None,
) -> int:
    """A registry version whose entry records ``kind``/``channels`` (when given) and whose
    checkpoint holds only ``config.json`` (never loaded: the API reads JSON only)."""
    staged = tmp_path / f"stage-{uuid4()}"
    staged.mkdir()
    (staged / "config.json").write_text(json.dumps(config or {}))
    meta = {k: v for k, v in {"kind": kind, "channels": channels}.items() if v is not None}
    return ctx_of(client).models.add_version(name, staged, meta)


def post(client: TestClient, mode: str = "RGB", **form: object) -> Response:
    return client.post(
        "/v1/restorations",
        files={"image": ("x.png", png_bytes(mode=mode), "image/png")},
        data=restore_form(**form),
    )


def refused(response: Response, code: str) -> str:
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    message: str = response.json()["message"]
    return message


def test_sagd_with_only_an_omission_model_is_refused_unless_noise_is_declared(
    client: TestClient, queue: FakeQueue, tmp_path: Path
) -> None:
    register(client, tmp_path, "default", kind="omission", channels=3)  # SAGD_DEFAULT_MODEL
    message = refused(post(client, method="sagd"), "model_cannot_fill_band")
    # what the model is, that the default was used, and what to do instead
    assert "model 'default' v1 is an omission model" in message and "cannot fill" in message
    assert "SAGD_DEFAULT_MODEL" in message
    for hint in ("method=auto", "notch", "model_kind=band", "input_noise_std > 0"):
        assert hint in message, hint
    explicit = refused(post(client, method="sagd", model="default:1"), "model_cannot_fill_band")
    assert "SAGD_DEFAULT_MODEL" not in explicit
    assert queue.sent == []  # nothing was queued
    # Out-of-band denoising only: accepted (the report then says the band was omitted).
    accepted = post(client, method="sagd", input_noise_std=0.05)
    assert accepted.status_code == 202, accepted.text
    assert [task for task, _ in queue.sent] == [TASK_RESTORE]


def test_sagd_accepts_a_band_model_and_refuses_a_full_one(
    client: TestClient, tmp_path: Path
) -> None:
    register(client, tmp_path, "default", kind="omission", channels=3)
    register(client, tmp_path, "filler", kind="band", channels=3)
    register(client, tmp_path, "clean", kind="full", channels=3)
    assert post(client, method="sagd", model="filler").status_code == 202
    assert post(client, method="sagd", model="default,filler:1").status_code == 202
    message = refused(post(client, method="sagd", model="clean"), "model_cannot_fill_band")
    assert "full model" in message
    # A full model cannot denoise either: declared noise does not make it acceptable.
    refused(
        post(client, method="sagd", model="clean", input_noise_std=0.1), "model_cannot_fill_band"
    )


def test_ddnm_needs_a_full_model(client: TestClient, tmp_path: Path) -> None:
    register(client, tmp_path, "default", kind="omission", channels=3)
    register(client, tmp_path, "filler", kind="band", channels=3)
    register(client, tmp_path, "clean", kind="full", channels=3)
    message = refused(post(client, method="ddnm"), "model_cannot_fill_band")
    assert "method=ddnm" in message and "model_kind=full" in message
    refused(post(client, method="ddnm", model="filler"), "model_cannot_fill_band")
    refused(post(client, method="ddnm", input_noise_std=0.1), "model_cannot_fill_band")
    assert post(client, method="ddnm", model="clean").status_code == 202


def test_model_checks_leave_model_free_methods_and_unknown_kinds_alone(
    client: TestClient, tmp_path: Path
) -> None:
    for method in ("auto", "notch", "classical"):  # no model involved, none registered
        assert post(client, method=method).status_code == 202, method
    register(client, tmp_path, "old")  # registered without a kind, and its config has none
    assert post(client, method="sagd", model="old").status_code == 202  # the worker decides


def test_channel_mismatch_is_refused_at_submit(client: TestClient, tmp_path: Path) -> None:
    register(client, tmp_path, "gray-band", kind="band", channels=1)
    register(client, tmp_path, "rgb-band", kind="band", channels=3)
    message = refused(post(client, method="sagd", model="gray-band"), "model_channel_mismatch")
    assert "model 'gray-band' v1" in message and "gray (1 channel)" in message
    assert "RGB (3 channels)" in message
    assert post(client, GRAY, method="sagd", model="gray-band").status_code == 202
    # a gray image through RGB models runs as three equal channels (the library's route)
    assert post(client, GRAY, method="sagd", model="rgb-band").status_code == 202
    refused(post(client, GRAY, method="sagd", model="rgb-band,gray-band"), "model_channel_mismatch")
    assert post(client, method="sagd", model="rgb-band").status_code == 202
    assert post(client, method="notch", model="gray-band").status_code == 202  # no model used


def test_kind_and_channels_of_old_entries_come_from_the_checkpoint_config(
    client: TestClient, tmp_path: Path
) -> None:
    """Entries registered before channels (or kinds) were recorded: read from config.json."""
    config = {"role": "band", "model": {"in_channels": 1}}
    register(client, tmp_path, "legacy", config=config)
    (version,) = client.get("/v1/models/legacy").json()["versions"]
    assert version["kind"] == "band" and version["channels"] == 1
    refused(post(client, method="sagd", model="legacy"), "model_channel_mismatch")
    assert post(client, GRAY, method="sagd", model="legacy").status_code == 202
    register(client, tmp_path, "legacy-omission", config={"role": "omission"})
    refused(post(client, method="sagd", model="legacy-omission"), "model_cannot_fill_band")


def test_batches_check_the_models_and_every_image(
    client: TestClient, queue: FakeQueue, tmp_path: Path
) -> None:
    register(client, tmp_path, "default", kind="omission", channels=3)
    register(client, tmp_path, "rgb-band", kind="band", channels=3)
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    response = client.post("/v1/batches", files=files, data=restore_form(method="sagd"))
    refused(response, "model_cannot_fill_band")
    assert queue.sent == [] and queue.chunks == []
    # Gray items against a gray model, the third item RGB: the batch is refused and the items
    # already queued are cancelled.
    register(client, tmp_path, "gray-band", kind="band", channels=1)
    files = [("images", (f"{i}.png", png_bytes(seed=i, mode=GRAY), "image/png")) for i in range(3)]
    files[2] = ("images", ("2.png", png_bytes(seed=2), "image/png"))
    form = restore_form(method="sagd", model="gray-band")
    message = refused(client.post("/v1/batches", files=files, data=form), "model_channel_mismatch")
    assert message.startswith("item 2 (2)")
    sent = [job_id for _, job_id in queue.sent]
    assert len(sent) == 2
    for job_id in sent:
        job = ctx_of(client).jobs.get(job_id) or {}
        assert job["state"] == "cancelled"
        assert job["error_message"].startswith("batch refused: item 2")
    files[2] = ("images", ("2.png", png_bytes(seed=2, mode=GRAY), "image/png"))
    accepted = client.post("/v1/batches", files=files, data=form)
    assert accepted.status_code == 202, accepted.text
