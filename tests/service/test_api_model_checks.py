"""Learned restorations refused at submit (422) when their models cannot do the work: no model
that can fill the band (``model_cannot_fill_band``), or one trained on other channels than the
image's (``model_channel_mismatch``); single uploads and batches. ``auto`` takes the models it is
named (any kind; none without ``model=``, never the default), ``notch`` and ``classical`` refuse
them (``model_not_used``)."""

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
    # auto checks the models it is given too (without one it is model-free: any image)
    refused(post(client, method="auto", model="gray-band"), "model_channel_mismatch")
    assert post(client, GRAY, method="auto", model="gray-band").status_code == 202


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


def _params(client: TestClient, response: Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    job = ctx_of(client).jobs.get(response.json()["id"]) or {}
    return ctx_of(client).jobs.params(job)


def test_auto_takes_the_models_it_is_named(
    client: TestClient, queue: FakeQueue, tmp_path: Path
) -> None:
    register(client, tmp_path, "default", kind="full", channels=3)  # SAGD_DEFAULT_MODEL
    register(client, tmp_path, "filler", kind="band", channels=3)
    register(client, tmp_path, "clean", kind="full", channels=3)
    params = _params(client, post(client, method="auto", model="filler"))
    assert params["method"] == "auto"
    assert params["models"] == [{"name": "filler", "version": None}]
    pinned = _params(client, post(client, method="auto", model="filler:1,clean"))
    assert pinned["models"] == [
        {"name": "filler", "version": 1},
        {"name": "clean", "version": None},
    ]
    # No role check: a model auto will not use is accepted (its report says it was not used).
    assert _params(client, post(client, method="auto", model="clean"))["models"] == [
        {"name": "clean", "version": None}
    ]
    # Without model= auto is model-free: not the server's default model.
    assert _params(client, post(client, method="auto"))["models"] == []
    assert _params(client, post(client))["models"] == []  # method=notch by restore_form
    assert len(queue.sent) == 5


def test_auto_with_an_unknown_model_is_refused(
    client: TestClient, queue: FakeQueue, tmp_path: Path
) -> None:
    register(client, tmp_path, "filler", kind="band", channels=3)
    message = refused(post(client, method="auto", model="no-such"), "unknown_model")
    assert "no-such" in message and "method=auto without model=" in message
    refused(post(client, method="auto", model="filler:2"), "unknown_model")  # no version 2
    refused(post(client, method="auto", model="filler,no-such"), "unknown_model")
    assert queue.sent == []


def test_notch_and_classical_refuse_a_model_rather_than_ignore_it(
    client: TestClient, queue: FakeQueue, tmp_path: Path
) -> None:
    register(client, tmp_path, "filler", kind="band", channels=3)
    for method in ("notch", "classical"):
        for model in ("filler", "no-such"):  # registered or not: it would not be used
            message = refused(post(client, method=method, model=model), "model_not_used")
            assert f"method={method} uses no model" in message
            assert "method=auto with a band model" in message
        assert post(client, method=method).status_code == 202
    files = [("images", ("a.png", png_bytes(), "image/png"))]
    response = client.post("/v1/batches", files=files, data=restore_form(model="filler"))
    refused(response, "model_not_used")
    assert len(queue.sent) == 2 and queue.chunks == []


def test_batch_items_of_auto_with_a_model_carry_it_and_go_one_per_task(
    client: TestClient, queue: FakeQueue, tmp_path: Path
) -> None:
    """Numpy-only items are micro-batched (several per task): auto on a sinusoid band without
    a model. Auto naming a model, or reading a noise band with the shipped band reader, runs a
    network: its items go one per task like a learned method's, each carrying its model."""
    register(client, tmp_path, "filler", kind="band", channels=3)
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    sinusoid = '{"regions": [{"kind": "notch", "fy": 0.1, "fx": 0.05, "radius": 0.03}]}'
    free = client.post(
        "/v1/batches", files=files, data=restore_form(method="auto", band_spec=sinusoid)
    )
    assert free.status_code == 202, free.text
    assert [len(ids) for _, ids in queue.chunks] == [3] and queue.sent == []
    first = queue.chunks[0][1][0]
    assert ctx_of(client).jobs.params(ctx_of(client).jobs.get(first) or {})["models"] == []
    reader = client.post("/v1/batches", files=files, data=restore_form(method="auto"))
    assert reader.status_code == 202, reader.text
    assert len(queue.chunks) == 1 and len(queue.sent) == 3  # one task per item
    form = restore_form(method="auto", model="filler")
    named = client.post("/v1/batches", files=files, data=form)
    assert named.status_code == 202, named.text
    assert len(queue.chunks) == 1 and len(queue.sent) == 6  # one task per item
    for _, job_id in queue.sent[3:]:
        params = ctx_of(client).jobs.params(ctx_of(client).jobs.get(job_id) or {})
        assert params["method"] == "auto"
        assert params["models"] == [{"name": "filler", "version": None}]


def test_a_standard_model_is_refused_at_submit_with_any_method(
    client: TestClient, queue: FakeQueue, tmp_path: Path
) -> None:
    """A standard model (a training baseline) is refused by the engine for every method: the
    API says so before the job exists, beside a usable model too, instead of a failure after
    the 202."""
    register(client, tmp_path, "base", kind="standard", channels=3)
    register(client, tmp_path, "filler", kind="band", channels=3)
    sent = len(queue.sent)
    for method, model in (("auto", "base"), ("sagd", "filler,base"), ("ddnm", "base")):
        message = refused(post(client, method=method, model=model), "model_cannot_fill_band")
        assert "'base'" in message and "standard model" in message, message
    assert len(queue.sent) == sent
    assert post(client, method="auto", model="filler").status_code == 202
