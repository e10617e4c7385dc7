"""What the workers' ``sagd_core`` can do, published in Redis at worker start.

The API must not import torch-backed code to find out, and the workers may run a newer or older
library than the API's machine, so workers announce it: ``{"analyze": true, "train": true,
"methods": ["notch", ...]}``. The last worker to start wins, which is fine for a fleet running one
image.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

KEY = "sagd:capabilities"


def publish(client: redis.Redis, capabilities: dict[str, Any]) -> None:
    client.set(KEY, json.dumps(capabilities))


def worker_capabilities(client: redis.Redis) -> dict[str, Any]:
    """The last published capabilities ({} if no worker has started yet or Redis is down)."""
    try:
        raw = cast(str | None, client.get(KEY))
    except redis.RedisError:
        return {}
    if not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
