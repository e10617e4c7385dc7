"""API keys (stored as SHA-256 digests) and a per-key token-bucket rate limit in Redis."""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from service.api.errors import ApiProblem
from service.settings import Settings, hash_api_key

ANONYMOUS = "anonymous"

# Token bucket: `burst` tokens, refilled at `rate` per second; one request takes one token.
_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key id (a prefix of the key's digest) owns the jobs it creates."""

    key_id: str


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def authenticate(settings: Settings, headers: Mapping[str, str]) -> Principal:
    """The caller's principal, or a 401 problem."""
    if not settings.auth_enabled:
        return Principal(ANONYMOUS)
    key = presented_key(headers)
    if key is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "missing API key (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    digest = hash_api_key(key)
    for stored in settings.api_keys:
        if hmac.compare_digest(digest, stored):
            return Principal(digest[:16])
    raise ApiProblem(401, "unauthorized", "invalid API key", headers={"WWW-Authenticate": "Bearer"})


class RateLimiter:
    def __init__(self, client: redis.Redis, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._script = client.register_script(_BUCKET)

    def check(self, key_id: str) -> None:
        """Take one token for ``key_id`` or raise 429 with ``Retry-After``."""
        allowed, wait = self._script(
            keys=[f"sagd:ratelimit:{key_id}"], args=[self.rate, self.burst, time.time()]
        )
        if int(allowed) != 1:
            retry_after = max(1, math.ceil(float(wait)))
            raise ApiProblem(
                429,
                "rate_limited",
                f"rate limit of {self.rate:g} requests/s (burst {self.burst}) exceeded",
                headers={"Retry-After": str(retry_after)},
            )
