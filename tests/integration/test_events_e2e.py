"""``GET /v1/jobs/{id}/events`` end to end: a real client (httpx streaming) against the API in
its own process, on the real Redis, with the real Celery worker running the job. The stream
carries the job's states and progress (fraction, ETA) until its final state and then ends; a
cancelled job ends its stream too; many followers at once are all served (the stream holds no
thread per client) while the API still answers other requests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.harness import Stack, noise_png, restore_form

pytestmark = [pytest.mark.integration]

SLOW_STEPS = 40  # fake 50 ms steps: 2 s of progress to follow
FOLLOWERS = 50  # more than the API's thread pool (40): streams must not hold a thread each


def read_events(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` of each frame in a stream's lines (comments and ``retry`` skipped)."""
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name is not None:
            events.append((name, json.loads(line.removeprefix("data: "))))
            name = None
    return events


def submit(client: httpx.Client) -> str:
    response = client.post(
        "/v1/restorations",
        files={"image": ("x.png", noise_png(32), "image/png")},
        data=restore_form(),
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def follow(client: httpx.Client, job_id: str, on_event: Any = None) -> list[tuple[str, Any]]:
    """Read the job's stream to its end (the server closes it); its events."""
    lines: list[str] = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            lines.append(line)
            if on_event is not None and line.startswith("data: "):
                on_event(read_events(lines)[-1])
    return read_events(lines)


def test_a_restoration_is_followed_to_its_end(e2e_stack: Stack) -> None:
    e2e_stack.slow(SLOW_STEPS)
    try:
        with (
            e2e_stack.fresh_api("events") as api,
            httpx.Client(base_url=api.url, timeout=60) as client,
        ):
            job_id = submit(client)
            events = follow(client, job_id)
    finally:
        e2e_stack.slow(0)
    names = [name for name, _ in events]
    states = [data["state"] for _, data in events]
    assert names[0] == "state" and states[0] in ("queued", "running")
    assert names[-1] == "state" and states[-1] == "succeeded"
    assert "running" in states
    assert all(data["id"] == job_id for _, data in events)
    running = [data for _, data in events if data["state"] == "running"]
    fractions = [data["progress"]["fraction"] for data in running]
    assert fractions == sorted(fractions)  # progress only moves forward
    assert any(0 < f < 1 for f in fractions), fractions  # followed while it ran
    assert any(data["eta_s"] is not None for data in running if data["progress"]["step"])
    final = events[-1][1]
    assert final["progress"]["fraction"] == 1.0
    assert final["result"]["band_actions"] and "warnings" in final["result"]
    assert final["result_url"] == f"/v1/jobs/{job_id}/result"


def test_a_cancelled_job_ends_its_stream(e2e_stack: Stack) -> None:
    e2e_stack.slow(200)
    try:
        with (
            e2e_stack.fresh_api("events-cancel") as api,
            httpx.Client(base_url=api.url, timeout=60) as client,
        ):
            job_id = submit(client)

            def cancel_once_running(event: tuple[str, dict[str, Any]]) -> None:
                _, data = event
                running = data.get("state") == "running" and data["progress"]["step"] >= 2
                if running and not cancelled:
                    cancelled.append(client.delete(f"/v1/jobs/{job_id}").status_code)

            cancelled: list[int] = []
            events = follow(client, job_id, cancel_once_running)
    finally:
        e2e_stack.slow(0)
    assert cancelled == [202]
    assert events[-1][0] == "state" and events[-1][1]["state"] == "cancelled"


def test_many_followers_are_served_at_once(e2e_stack: Stack) -> None:
    async def follow_all(url: str, job_id: str) -> tuple[list[str], int]:
        limits = httpx.Limits(max_connections=FOLLOWERS + 5)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

            async def last_state() -> str:
                state = ""
                async with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            state = json.loads(line.removeprefix("data: "))["state"]
                return state

            followers = [asyncio.create_task(last_state()) for _ in range(FOLLOWERS)]
            await asyncio.sleep(0.5)  # every stream open: the API still answers
            health = (await client.get("/healthz")).status_code
            return list(await asyncio.gather(*followers)), health

    e2e_stack.slow(SLOW_STEPS)
    try:
        with (
            e2e_stack.fresh_api("events-many") as api,
            httpx.Client(base_url=api.url, timeout=60) as client,
        ):
            job_id = submit(client)
            finals, health = asyncio.run(follow_all(api.url, job_id))
    finally:
        e2e_stack.slow(0)
    assert health == 200
    assert finals == ["succeeded"] * FOLLOWERS
