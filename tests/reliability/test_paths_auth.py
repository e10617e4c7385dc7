"""Ownership, idempotency-key isolation and path traversal, through the real app.

Authentication (401 on every ``/v1`` route without or with a bad key) and ``GET``/``DELETE`` of
another key's job are covered by ``tests/service/test_api_operations.py``; here every route that
takes a job or batch id is checked for another key (404, no body leak), and every place a
client-chosen name can reach the disk gets hostile names (``../``, absolute paths, NUL, 4 KB,
backslashes, encoded dots): zip entry names (batches, trainings), upload file names, model
names, corruption-type names, dataset and preset names, idempotency keys. Afterwards no file may
exist outside the storage root, inside the test's sandbox.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from service.settings import hash_api_key
from tests.harness import BAND, BAND_JSON, Api, RedisServer, make_api, png_bytes, restore_form
from tests.reliability.tools import files_outside, is_problem_json

KEY_A, KEY_B = "reliability-key-a", "reliability-key-b"
A = {"Authorization": f"Bearer {KEY_A}"}
B = {"X-API-Key": KEY_B}


@pytest.fixture
def authed(tmp_path: Path, redis_server: RedisServer) -> Any:
    api = make_api(tmp_path, redis_server.url, api_keys=[hash_api_key(KEY_A), hash_api_key(KEY_B)])
    with api.client:
        yield api


def _shape(body: dict[str, Any], url: str) -> tuple[str, str]:
    """An error's code and message with the ids of ``url`` blanked out."""
    message = body["message"]
    for part in url.split("/"):
        if len(part) == 36:
            message = message.replace(part, "<id>")
    return body["code"], message


def _concrete(path: str, job_id: str, batch_id: str) -> str:
    return path.replace("{job_id}", job_id).replace("{batch_id}", batch_id)


def test_another_keys_jobs_and_batches_are_404_on_every_route(authed: Api) -> None:
    client = authed.client
    job = client.post(
        "/v1/restorations", files={"image": ("a.png", png_bytes())}, data=restore_form(), headers=A
    ).json()["id"]
    batch = client.post(
        "/v1/batches",
        files=[("images", ("a.png", png_bytes())), ("images", ("b.png", png_bytes(seed=1)))],
        data=restore_form(),
        headers=A,
    ).json()["id"]
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    ctx.storage.write_bytes(ctx.storage.job_file(job, "result.png"), png_bytes())
    ctx.jobs.claim(job, 3)
    ctx.jobs.finish(job, "succeeded", result={"ok": True})
    checked = 0
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if "{job_id}" not in path and "{batch_id}" not in path:
            continue
        for method in operations:
            url = _concrete(path, job, batch)
            params: list[dict[str, str]] = [{}]
            if path.endswith("/result") and "{job_id}" in path:
                params = [{"part": p} for p in ("image", "report", "uncertainty")]
            missing_url = _concrete(path, str(uuid.uuid4()), str(uuid.uuid4()))
            for query in params:
                other = client.request(method.upper(), url, params=query, headers=B)
                assert other.status_code == 404, (method, url, query, other.text)
                # indistinguishable from an id that does not exist: no existence oracle
                missing = client.request(method.upper(), missing_url, params=query, headers=B)
                assert missing.status_code == 404 and is_problem_json(other)
                assert _shape(other.json(), url) == _shape(missing.json(), missing_url)
            checked += 1
    assert checked >= 6
    # the owner still sees everything, and B's attempts changed nothing
    assert client.get(f"/v1/jobs/{job}", headers=A).json()["state"] == "succeeded"
    assert client.get(f"/v1/jobs/{job}/result", headers=A).status_code == 200
    states = [i["state"] for i in client.get(f"/v1/batches/{batch}", headers=A).json()["items"]]
    assert states == ["queued", "queued"]
    # listings are per key too: B sees none of A's jobs or batches
    assert client.get("/v1/jobs", headers=B).json()["items"] == []
    assert client.get("/v1/batches", headers=B).json()["items"] == []
    listed = {j["id"] for j in client.get("/v1/jobs", headers=A).json()["items"]}
    assert job in listed and len(listed) == 3  # the job and the batch's two items
    assert [b["id"] for b in client.get("/v1/batches", headers=A).json()["items"]] == [batch]


def test_idempotency_keys_are_per_api_key(authed: Api) -> None:
    def post(headers: dict[str, str], key: str) -> str:
        response = authed.client.post(
            "/v1/restorations",
            files={"image": ("a.png", png_bytes())},
            data=restore_form(),
            headers={**headers, "Idempotency-Key": key},
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    first = post(A, "same-key")
    assert post(A, "same-key") == first
    other = post(B, "same-key")
    assert other != first  # B never gets A's job through a guessed key
    assert authed.client.get(f"/v1/jobs/{first}", headers=B).status_code == 404


HOSTILE = [
    "../outside/pwned",
    "../../outside/pwned",
    "..\\..\\outside\\pwned",
    "/tmp/sagd-pwned-absolute",
    "..",
    ".",
    "a/../../outside/pwned",
    "%2e%2e%2foutside%2fpwned",
    "x" * 4096,
    "name\x00.png",
    "C:\\outside\\pwned",
    "\u2025/outside",
    "",
]


def _zip(names: list[str]) -> bytes:
    """A zip with one valid PNG per name, the names written byte for byte (NUL included)."""
    buffer = io.BytesIO()
    placeholders = [f"{i:04d}".ljust(max(len(n.encode()), 4), "q") for i, n in enumerate(names)]
    with zipfile.ZipFile(buffer, "w") as archive:
        for placeholder in placeholders:
            archive.writestr(placeholder, png_bytes(seed=1))
    data = buffer.getvalue()
    for placeholder, name in zip(placeholders, names, strict=True):
        raw = name.encode().ljust(len(placeholder.encode()), b"q")
        data = data.replace(placeholder.encode(), raw)
    return data


def _sent(response: Any, where: str) -> str:
    assert response.status_code < 500, (where, response.status_code, response.text)
    if response.status_code >= 400:
        assert is_problem_json(response), (where, response.text)
    return f"{where}:{response.status_code}"


def test_hostile_names_never_reach_outside_the_storage_root(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    sandbox = tmp_path / "sandbox"
    outside = sandbox / "outside"
    outside.mkdir(parents=True)
    api = make_api(sandbox, redis_server.url)
    seen: list[str] = []
    with api.client as client:
        storage = api.storage
        for name in HOSTILE:
            form = restore_form()
            files = {"image": (name, png_bytes(), "image/png")}
            seen.append(_sent(client.post("/v1/restorations", files=files, data=form), "upload"))
            batch_files = [("images", (name, png_bytes(), "image/png"))]
            batch = client.post("/v1/batches", files=batch_files, data=form)
            seen.append(_sent(batch, "batch-file"))
            if batch.status_code == 202:
                result_names = [item["name"] for item in batch.json()["items"]]
                assert all("/" not in n and "\\" not in n and ".." not in n for n in result_names)
            archive = {"archive": ("a.zip", _zip([name or "empty"]), "application/zip")}
            seen.append(_sent(client.post("/v1/batches", files=archive, data=form), "zip"))
            dataset = {"dataset_zip": ("d.zip", _zip([name or "empty"]), "application/zip")}
            training = {"model_name": "m1", "band_spec": BAND_JSON, "steps": "1"}
            response = client.post("/v1/trainings", files=dataset, data=training)
            seen.append(_sent(response, "dataset-zip"))
            for field in ("model_name", "corruption_type", "dataset", "unet"):
                data = {"model_name": "m1", "band_spec": BAND_JSON, "dataset": "digits"}
                data[field] = name
                if field == "corruption_type":
                    data.pop("band_spec")
                seen.append(_sent(client.post("/v1/trainings", data=data), f"train-{field}"))
            created = client.post("/v1/corruption-types", json={"name": name, "band": BAND})
            seen.append(_sent(created, "corruption-type"))
            assert created.status_code == 422
            ct_form = {"corruption_type": name, "method": "notch", "band_spec": None}
            response = client.post("/v1/restorations", files=files, data=restore_form(**ct_form))
            seen.append(_sent(response, "restore-corruption-type"))
            model_form = restore_form(method="sagd", model=name)
            response = client.post("/v1/restorations", files=files, data=model_form)
            seen.append(_sent(response, "restore-model"))
            segment = quote(name, safe="")
            for url in (f"/v1/corruption-types/{segment}", f"/v1/models/{segment}"):
                seen.append(_sent(client.get(url), "get-name"))
            put = client.put(f"/v1/models/{segment}/default-version", json={"version": 1})
            seen.append(_sent(put, "put-default"))
            if name not in ("", ".", ".."):  # the web page's assets (httpx folds dot segments)
                asset = client.get(f"/static/{segment}")
                assert asset.status_code in (404, 422), (name, asset.status_code)
            if "\x00" not in name and name.isascii():  # HTTP headers cannot carry NUL
                headers = {"Idempotency-Key": name} if name else {}
                response = client.post("/v1/restorations", files=files, data=form, headers=headers)
                seen.append(_sent(response, "idempotency-key"))
    print("hostile names:", json.dumps(sorted(set(seen))))
    assert files_outside(sandbox, storage) == []
    assert list(outside.iterdir()) == []
    assert not Path("/tmp/sagd-pwned-absolute").exists()
    names = [p.name for p in storage.rglob("*")]
    assert not any(".." in n or "\\" in n or len(n) > 255 for n in names)
    assert "idempotency-key:422" in seen  # the 4 KB key is refused, not truncated
    assert "corruption-type:422" in seen


def test_corruption_type_and_model_names_stay_flat_files(authed: Api) -> None:
    """Names that pass validation land exactly at ``corruption_types/<name>.json``."""
    client = authed.client
    response = client.post("/v1/corruption-types", json={"name": "a-1_b", "band": BAND}, headers=A)
    assert response.status_code == 201, response.text
    root = authed.storage
    assert (root / "corruption_types" / "a-1_b.json").is_file()
    made = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert all(not os.path.isabs(p) and ".." not in p for p in made)
