"""The API's task message is the one Celery itself would send (pushed by us, not by kombu)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import redis

from service.jobs.contracts import TASK_RESTORE, TASK_RESTORE_MANY, TASK_TRAIN
from service.jobs.queue import CeleryQueue
from tests.harness import make_settings


def _decoded(raw: str | bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    message["properties"].pop("delivery_tag")  # random per message
    return message


def test_message_equals_what_celery_send_task_pushes(tmp_path: Path, redis_url: str) -> None:
    queue = CeleryQueue(make_settings(tmp_path, redis_url))
    client = redis.Redis.from_url(redis_url)
    job_ids = [uuid.uuid4(), uuid.uuid4()]
    cases = [
        (TASK_RESTORE, [str(job_ids[0])], str(job_ids[0]), queue.message(TASK_RESTORE, job_ids[0])),
        (TASK_TRAIN, [str(job_ids[1])], str(job_ids[1]), queue.message(TASK_TRAIN, job_ids[1])),
    ]
    many = queue.message_many(TASK_RESTORE_MANY, job_ids)
    many_id = json.loads(many.body)["headers"]["id"]
    cases.append((TASK_RESTORE_MANY, [[str(j) for j in job_ids]], many_id, many))
    for task, args, task_id, ours in cases:
        queue.app.send_task(task, args=args, task_id=task_id, queue=ours.key, ignore_result=True)
        [theirs] = client.lrange(ours.key, 0, -1)
        client.delete(ours.key)
        assert _decoded(ours.body) == _decoded(theirs), task
    assert {c[3].key for c in cases} == {"restore", "train"}
    assert len({json.loads(c[3].body)["properties"]["delivery_tag"] for c in cases}) == 3
