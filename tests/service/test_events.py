"""Server-sent events of a job: the frame format, the stream's rules (one event per change, the
end after the final state, keep-alive, maximum duration, a vanished record), and the route's
auth and ownership (the app on the session's Redis with a fake queue: no worker moves the job,
the test does)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import redis
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.context import AppContext
from service.api.routes import jobs as jobs_routes
from service.api.routes.jobs import job_event_stream
from service.jobs.views import sse_comment, sse_frame, sse_retry
from service.settings import Settings, hash_api_key
from tests.harness import FakeQueue, png_bytes, restore_form


def parse_stream(text: str) -> list[dict[str, Any]]:
    """Frames as a client reads them (the SSE rules: fields up to a blank line, ``:`` a
    comment): ``{"event", "id", "data", "retry", "comment"}`` each."""
    frames = []
    for block in text.split("\n\n"):
        if not block:
            continue
        frame: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                frame["comment"] = value
            elif name == "data":
                frame["data"] = json.loads(value)
            else:
                frame[name] = value
        frames.append(frame)
    return frames


# ---- the frame format ------------------------------------------------------------------------
def test_a_frame_is_event_id_and_one_line_of_json() -> None:
    frame = sse_frame("progress", {"message": "line one\nline two", "step": 3}, event_id=7)
    assert frame.endswith(b"\n\n") and frame.count(b"\n\n") == 1
    lines = frame.decode().rstrip("\n").split("\n")
    assert lines[:2] == ["event: progress", "id: 7"]
    assert len(lines) == 3 and lines[2].startswith("data: ")
    assert json.loads(lines[2].removeprefix("data: "))["message"] == "line one\nline two"


def test_comment_retry_and_unknown_events() -> None:
    assert sse_comment("keep-alive") == b": keep-alive\n\n"
    assert sse_comment("two\nlines") == b": two lines\n\n"  # a newline cannot end the frame
    assert sse_retry(2000) == b"retry: 2000\n\n"
    assert parse_stream(sse_frame("state", {"a": 1}).decode()) == [
        {"event": "state", "data": {"a": 1}}
    ]
    with pytest.raises(ValueError, match="not an event"):
        sse_frame("done", {})


# ---- the stream, driven by a scripted record -------------------------------------------------
def record(state: str, step: int = 0, total: int = 0, message: str = "") -> dict[str, str]:
    now = time.time()
    fields = {
        "id": "6f1b7c2e-0000-4000-8000-000000000001",
        "kind": "restore",
        "state": state,
        "created_at": repr(now - 5),
        "step": str(step),
        "total": str(total),
        "message": message,
    }
    if state != "queued":
        fields["started_at"] = repr(now - 4)
    if state in ("succeeded", "failed", "cancelled"):
        fields["finished_at"] = repr(now)
    if state == "succeeded":
        fields["result"] = json.dumps({"warnings": ["w"], "band_actions": ["notch"]})
    return fields


class Script:
    """A job record that changes on each look, and a fake clock that advances by ``tick``."""

    def __init__(self, records: list[dict[str, str] | Exception | None], tick: float = 1.0) -> None:
        self.records = records
        self.looks = 0
        self.now = 0.0
        self.tick = tick

    async def load(self) -> dict[str, str] | None:
        item = self.records[min(self.looks, len(self.records) - 1)]
        self.looks += 1
        self.now += self.tick
        if isinstance(item, Exception):
            raise item
        return item

    def clock(self) -> float:
        return self.now


def run_stream(script: Script, *, keepalive_s: float = 100, max_s: float = 1000) -> str:
    async def collect() -> str:
        frames = job_event_stream(
            script.load, poll_s=0, keepalive_s=keepalive_s, max_s=max_s, clock=script.clock
        )
        return "".join([frame.decode() async for frame in frames])

    return anyio.run(collect)


def test_one_event_per_change_and_the_end_after_the_final_state() -> None:
    script = Script(
        [
            record("queued"),
            record("queued"),  # no change: no event
            record("running", 0, 4),
            record("running", 1, 4, "sampling"),
            record("running", 1, 4, "sampling"),  # no change (the ETA alone moves)
            record("running", 3, 4, "sampling"),
            record("succeeded", 4, 4),
            record("succeeded", 4, 4),  # never read: the stream ended
        ]
    )
    frames = parse_stream(run_stream(script))
    assert frames[0] == {"retry": str(jobs_routes.RETRY_MS)}
    events = frames[1:]
    assert [(f["event"], f["data"]["state"]) for f in events] == [
        ("state", "queued"),
        ("state", "running"),
        ("progress", "running"),
        ("progress", "running"),
        ("state", "succeeded"),
    ]
    assert [f["id"] for f in events] == ["1", "2", "3", "4", "5"]
    steps = [f["data"]["progress"]["fraction"] for f in events]
    assert steps == [0.0, 0.0, 0.25, 0.75, 1.0]
    assert events[3]["data"]["eta_s"] is not None and events[3]["data"]["eta_s"] > 0
    assert events[-1]["data"]["result"]["band_actions"] == ["notch"]
    assert script.looks == 7


def test_keep_alive_comments_and_the_maximum_duration() -> None:
    script = Script([record("running", 1, 10)], tick=1.0)
    frames = parse_stream(run_stream(script, keepalive_s=3, max_s=10))
    kinds = [f.get("event") or ("comment" if "comment" in f else "retry") for f in frames]
    assert kinds[:2] == ["retry", "state"]
    assert kinds[-1] == "timeout"
    assert frames[-1]["data"]["code"] == "stream_timeout"
    # The state at t = 1, then silence: a comment at t = 4 and 7, the end at t = 10.
    assert kinds.count("comment") == 2
    assert all(f["comment"] == "keep-alive" for f in frames if "comment" in f)
    assert script.looks == 10


@pytest.mark.parametrize(
    ("failure", "code"),
    [(None, "not_found"), (redis.ConnectionError("down"), "unavailable")],
)
def test_a_vanished_record_or_store_ends_the_stream_with_an_error(
    failure: Exception | None, code: str
) -> None:
    script = Script([record("running", 1, 10), failure, record("succeeded")])
    frames = parse_stream(run_stream(script))
    assert [f.get("event") for f in frames[1:]] == ["state", "error"]
    assert frames[-1]["data"]["code"] == code
    assert script.looks == 2


# ---- the route -------------------------------------------------------------------------------
KEY, OTHER = "events-key", "events-other-key"


@pytest.fixture
def keyed(tmp_path: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(jobs_routes, "POLL_S", 0.01)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        storage_root=tmp_path / "storage",
        redis_url=redis_url,
        api_keys=[hash_api_key(KEY), hash_api_key(OTHER)],
    )
    with TestClient(create_app(settings, queue=FakeQueue())) as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def submit(client: TestClient) -> str:
    files = {"image": ("x.png", png_bytes(), "image/png")}
    response = client.post("/v1/restorations", files=files, data=restore_form(), headers=auth(KEY))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_the_route_follows_a_job_to_its_final_state(keyed: TestClient) -> None:
    job_id = submit(keyed)
    ctx: AppContext = keyed.app.state.ctx  # type: ignore[attr-defined]
    received = ""
    with keyed.stream("GET", f"/v1/jobs/{job_id}/events", headers=auth(KEY)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        for chunk in response.iter_text():
            received += chunk
            events = [f for f in parse_stream(received) if "event" in f]
            if len(events) == 1:  # the first snapshot: now the job moves
                ctx.jobs.claim(job_id, 3)
                ctx.jobs.progress(job_id, 2, 5, "sampling")
            elif events and events[-1]["data"]["state"] == "running":
                ctx.jobs.finish(job_id, "succeeded", result={"warnings": []})
    events = [f for f in parse_stream(received) if "event" in f]
    assert events[0]["event"] == "state" and events[0]["data"]["state"] == "queued"
    assert events[-1]["event"] == "state" and events[-1]["data"]["state"] == "succeeded"
    assert {"running"} <= {e["data"]["state"] for e in events}
    assert events[-1]["data"]["id"] == job_id


def test_the_stream_ends_at_its_maximum_duration(
    keyed: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs_routes, "MAX_STREAM_S", 0.2)
    job_id = submit(keyed)  # stays queued: no worker
    response = keyed.get(f"/v1/jobs/{job_id}/events", headers=auth(KEY))
    events = [f for f in parse_stream(response.text) if "event" in f]
    assert [e["event"] for e in events] == ["state", "timeout"]


def test_the_route_has_the_rules_of_get_job(keyed: TestClient) -> None:
    job_id = submit(keyed)
    missing = keyed.get(f"/v1/jobs/{job_id}/events")
    assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
    other = keyed.get(f"/v1/jobs/{job_id}/events", headers=auth(OTHER))
    assert other.status_code == 404 and other.json()["code"] == "not_found"
    unknown = keyed.get("/v1/jobs/6f1b7c2e-0000-4000-8000-00000000abcd/events", headers=auth(KEY))
    assert unknown.status_code == 404
    bad = keyed.get("/v1/jobs/not-a-uuid/events", headers=auth(KEY))
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
