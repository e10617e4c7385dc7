"""Server-sent events of a job: the frame format, the stream's rules (one event per change, the
end after the final state, keep-alive, maximum duration, a vanished record, previews announced
once each and only when asked), and the routes' auth and ownership, the stream's and the
preview's (the app on the session's Redis with a fake queue: no worker moves the job, the test
does)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import anyio
import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.context import AppContext
from service.api.routes import jobs as jobs_routes
from service.api.routes.jobs import job_event_stream
from service.jobs.images import encode_png
from service.jobs.storage import PREVIEW_FILE
from service.jobs.views import PreviewStamp, png_size, sse_comment, sse_frame, sse_retry
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


# ---- previews --------------------------------------------------------------------------------
STAMP_A = PreviewStamp(inode=1, mtime_ns=10, width=40, height=30)
STAMP_B = PreviewStamp(inode=2, mtime_ns=20, width=40, height=30)


def test_each_new_preview_is_announced_once_while_the_job_runs() -> None:
    script = Script(
        [
            record("queued"),
            record("running", 1, 4),
            record("running", 1, 4),
            record("running", 2, 4),
            record("succeeded", 4, 4),
        ]
    )
    stamps = iter([None, STAMP_A, STAMP_A, STAMP_B])  # one look per non-final record
    looked: list[int] = []

    async def look_preview() -> PreviewStamp | None:
        looked.append(script.looks)
        return next(stamps)

    async def collect() -> str:
        frames = job_event_stream(
            script.load,
            poll_s=0,
            keepalive_s=100,
            max_s=1000,
            clock=script.clock,
            look_preview=look_preview,
        )
        return "".join([frame.decode() async for frame in frames])

    events = [f for f in parse_stream(anyio.run(collect)) if "event" in f]
    assert [e["event"] for e in events] == [
        "state",
        "state",
        "preview",
        "progress",
        "preview",
        "state",
    ]
    assert [e["id"] for e in events] == ["1", "2", "3", "4", "5", "6"]
    first, second = events[2]["data"], events[4]["data"]
    job_id = record("queued")["id"]
    assert first == {
        "id": job_id,
        "number": 1,
        "width": 40,
        "height": 30,
        "url": f"/v1/jobs/{job_id}/preview?v=10",
    }
    assert second["number"] == 2 and second["url"].endswith("?v=20")
    assert looked == [1, 2, 3, 4]  # never after the final state


def test_png_size_reads_the_header_and_refuses_other_bytes(tmp_path: Any) -> None:
    png = encode_png(np.zeros((3, 7, 3), np.float32), 8)
    assert png_size(png[:24]) == (7, 3)
    assert png_size(png[:20]) is None and png_size(b"GIF89a" + png[6:24]) is None
    path = tmp_path / "preview.png"
    assert jobs_routes.read_preview_stamp(path) is None  # none yet
    path.write_bytes(b"not a png, but long enough to have a header")
    assert jobs_routes.read_preview_stamp(path) is None
    path.write_bytes(png)
    stamp = jobs_routes.read_preview_stamp(path)
    assert stamp is not None and (stamp.width, stamp.height) == (7, 3)


def write_preview(client: TestClient, job_id: str, height: int, width: int) -> bytes:
    ctx: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    png = encode_png(np.full((height, width), 0.5, np.float32), 8)
    folder = ctx.storage.job_dir(UUID(job_id))
    ctx.storage.write_job_files(folder, {PREVIEW_FILE: png}, durable=False)
    return png


def test_the_preview_route_has_the_rules_of_get_job(keyed: TestClient) -> None:
    job_id = submit(keyed)
    none_yet = keyed.get(f"/v1/jobs/{job_id}/preview", headers=auth(KEY))
    assert none_yet.status_code == 404 and none_yet.json()["code"] == "not_found"
    assert "no preview yet" in none_yet.json()["message"]
    png = write_preview(keyed, job_id, 12, 20)
    response = keyed.get(f"/v1/jobs/{job_id}/preview?v=1", headers=auth(KEY))
    assert response.status_code == 200 and response.content == png
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"
    assert keyed.get(f"/v1/jobs/{job_id}/preview").status_code == 401
    other = keyed.get(f"/v1/jobs/{job_id}/preview", headers=auth(OTHER))
    assert other.status_code == 404 and other.json()["code"] == "not_found"
    bad = keyed.get("/v1/jobs/nope/preview", headers=auth(KEY))
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


@pytest.mark.parametrize("asked", [True, False])
def test_the_stream_announces_previews_only_when_asked(keyed: TestClient, asked: bool) -> None:
    job_id = submit(keyed)
    ctx: AppContext = keyed.app.state.ctx  # type: ignore[attr-defined]
    url = f"/v1/jobs/{job_id}/events" + ("?preview=1" if asked else "")
    received = ""
    with keyed.stream("GET", url, headers=auth(KEY)) as response:
        assert response.status_code == 200
        for chunk in response.iter_text():
            received += chunk
            events = [f for f in parse_stream(received) if "event" in f]
            if not events:  # the retry field comes first
                continue
            if len(events) == 1:  # queued: the job starts and writes its first preview
                ctx.jobs.claim(job_id, 3)
                ctx.jobs.progress(job_id, 1, 5, "")
                write_preview(keyed, job_id, 12, 20)
            elif events[-1]["event"] == "preview" or (
                not asked and events[-1]["data"]["state"] == "running"
            ):
                ctx.jobs.finish(job_id, "succeeded", result={"warnings": []})
    events = [f for f in parse_stream(received) if "event" in f]
    previews = [e["data"] for e in events if e["event"] == "preview"]
    assert events[-1]["data"]["state"] == "succeeded"
    if not asked:
        assert previews == []
        return
    assert len(previews) == 1 and previews[0]["width"] == 20 and previews[0]["height"] == 12
    fetched = keyed.get(previews[0]["url"], headers=auth(KEY))
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
