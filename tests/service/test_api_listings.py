"""GET /v1/jobs and GET /v1/batches: this key's records, newest first, paged by a cursor."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.api.context import AppContext
from tests.harness import png_bytes, restore_form


def _restore(client: TestClient, seed: int, headers: dict[str, str] | None = None) -> str:
    files = {"image": ("x.png", png_bytes(seed=seed), "image/png")}
    response = client.post("/v1/restorations", files=files, data=restore_form(), headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_jobs_are_listed_newest_first_with_a_cursor(client: TestClient) -> None:
    assert client.get("/v1/jobs").json() == {"items": [], "next_before": None}
    made = [_restore(client, seed) for seed in range(5)]
    first = client.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in first["items"]] == made[::-1][:2]
    assert first["items"][0]["state"] == "queued"
    second = client.get("/v1/jobs", params={"limit": 2, "before": first["next_before"]}).json()
    third = client.get("/v1/jobs", params={"limit": 2, "before": second["next_before"]}).json()
    assert [j["id"] for j in second["items"] + third["items"]] == made[::-1][2:]
    assert third["next_before"] is None
    everything = client.get("/v1/jobs", params={"limit": 200}).json()["items"]
    assert [j["id"] for j in everything] == made[::-1]


def test_jobs_sharing_a_creation_time_are_not_skipped_across_pages(client: TestClient) -> None:
    """Records created in one call can share a creation time (float resolution): a page that
    ends inside such a group takes the whole group, so the next page skips none of it."""
    made = [_restore(client, seed) for seed in range(5)]
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    key = ctx.jobs._index_key("jobs", "anonymous")
    owner_keys = [k for k in ctx.jobs.r.scan_iter(match=key.rsplit(":", 2)[0] + ":*:jobs")]
    assert len(owner_keys) == 1
    tie = float(ctx.jobs.r.zscore(owner_keys[0], made[2]))
    ctx.jobs.r.zadd(owner_keys[0], {made[1]: tie, made[3]: tie})  # 1, 2, 3 created "at once"
    seen: list[str] = []
    before = None
    for _ in range(5):
        params = {"limit": 2} if before is None else {"limit": 2, "before": before}
        page = client.get("/v1/jobs", params=params).json()
        seen += [j["id"] for j in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(made)


def test_expired_jobs_leave_the_listing(client: TestClient) -> None:
    ids = [_restore(client, seed) for seed in range(3)]
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    ctx.jobs.r.delete(ctx.jobs.key(ids[1]))  # what the record's TTL does
    listed = [j["id"] for j in client.get("/v1/jobs").json()["items"]]
    assert listed == [ids[2], ids[0]]


def test_listing_bad_parameters_are_422(client: TestClient) -> None:
    for params in ({"limit": 0}, {"limit": 201}, {"before": "nan"}, {"before": "x"}):
        response = client.get("/v1/jobs", params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"
    assert client.get("/v1/batches", params={"limit": 101}).status_code == 422


def test_batches_are_listed_with_counts(client: TestClient) -> None:
    files = [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    older = client.post("/v1/batches", files=files, data=restore_form()).json()
    newer = client.post("/v1/batches", files=files[:1], data=restore_form()).json()
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    first_item = older["items"][0]["job_id"]
    ctx.jobs.claim(first_item, 3)
    ctx.jobs.finish(first_item, "succeeded")
    listing = client.get("/v1/batches").json()
    assert [b["id"] for b in listing["items"]] == [newer["id"], older["id"]]
    summary = listing["items"][1]
    assert summary["size"] == 3 and summary["state"] == "running"
    assert summary["counts"]["succeeded"] == 1 and summary["counts"]["queued"] == 2
    assert summary["url"] == f"/v1/batches/{older['id']}"
    page = client.get("/v1/batches", params={"limit": 1}).json()
    assert [b["id"] for b in page["items"]] == [newer["id"]] and page["next_before"] is not None


def test_jobs_are_filtered_by_state_and_kind(client: TestClient) -> None:
    ids = [_restore(client, seed) for seed in range(6)]
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    for job_id in ids[1::2]:  # 1, 3, 5 succeed; 0, 2, 4 stay queued
        ctx.jobs.claim(job_id, 3)
        ctx.jobs.finish(job_id, "succeeded")
    ctx.jobs.r.hset(ctx.jobs.key(ids[4]), "kind", "analyze")  # one of another kind

    def listed(**params: object) -> list[str]:
        response = client.get("/v1/jobs", params=params)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()["items"]]

    assert listed(state="succeeded") == [ids[5], ids[3], ids[1]]
    assert listed(state="queued", kind="restore") == [ids[2], ids[0]]
    assert listed(kind="analyze") == [ids[4]]
    assert listed(state=["queued", "succeeded"], kind="restore") == [
        ids[5],
        ids[3],
        ids[2],
        ids[1],
        ids[0],
    ]
    assert listed(state="failed") == []
    # Paged: a filtered page's cursor continues after its last job.
    first = client.get("/v1/jobs", params={"state": "succeeded", "limit": 2}).json()
    assert [j["id"] for j in first["items"]] == [ids[5], ids[3]]
    rest = client.get(
        "/v1/jobs", params={"state": "succeeded", "limit": 2, "before": first["next_before"]}
    ).json()
    assert [j["id"] for j in rest["items"]] == [ids[1]] and rest["next_before"] is None


def test_unknown_filters_are_422(client: TestClient) -> None:
    for params in ({"state": "done"}, {"kind": "paint"}):
        response = client.get("/v1/jobs", params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"


def test_methods_are_listed_with_their_summaries(client: TestClient) -> None:
    from sagd_core.restore.request import METHOD_SUMMARIES

    response = client.get("/v1/methods")
    assert response.status_code == 200
    methods = response.json()
    assert [m["name"] for m in methods] == ["auto", "notch", "classical", "ddnm", "sagd"]
    assert {m["name"]: m["summary"] for m in methods} == METHOD_SUMMARIES
    assert {m["name"] for m in methods if m["needs_model"]} == {"ddnm", "sagd"}
    # auto needs no model but takes one (model=); notch and classical refuse one
    assert {m["name"] for m in methods if m["takes_model"]} == {"auto", "ddnm", "sagd"}
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    ctx.redis.set("sagd:capabilities", '{"methods": ["auto", "notch"]}')
    try:
        available = {m["name"]: m["available"] for m in client.get("/v1/methods").json()}
    finally:
        ctx.redis.delete("sagd:capabilities")
    assert available == {
        "auto": True,
        "notch": True,
        "classical": False,
        "ddnm": False,
        "sagd": False,
    }
