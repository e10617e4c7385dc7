"""Job and batch state in Redis: one hash per job, transitions done by small Lua scripts.

A job hash holds ``kind, state, owner, created_at, started_at, finished_at, step, total, message,
error_code, error_message, attempts, batch_id, params, callback_url, result, cancel, lease_until,
worker``. State moves queued → running → (succeeded | failed | cancelled); a terminal state is final
(a re-delivered task cannot flip it), which with atomic result files makes tasks idempotent.
Attempts are counted per job on every claim, so a job whose worker keeps dying is given up after
``max_attempts``.

A running job holds a lease (``lease_until``, also in the ``sagd:leases`` sorted set), taken by
the claim and dropped by the finish, both here; its renewal and the reaping of the jobs whose lease
ran out are ``service.jobs.leases`` (:attr:`JobStore.leases`). The start-up comparison of the
records with the job folders is ``service.jobs.reconcile``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from service.jobs.leases import DEFAULT_LEASE_S, LEASES, SERVER_NOW, Leases
from service.jobs.lost_messages import QUEUED

if TYPE_CHECKING:
    from service.jobs.queue import TaskMessage

PREFIX = "sagd"
TERMINAL = ("succeeded", "failed", "cancelled")

# KEYS[1]: the job, KEYS[2]: the leases, KEYS[3]: the queued jobs. ARGV: max attempts,
# started_at, lease seconds, holder, id.
_CLAIM = (
    SERVER_NOW
    + """
redis.call('ZREM', KEYS[3], ARGV[5])
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'missing', 0, {}} end
if st == 'succeeded' or st == 'failed' or st == 'cancelled' then return {'terminal', 0, {}} end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  return {'cancel', attempts, redis.call('HGETALL', KEYS[1])}
end
if attempts > tonumber(ARGV[1]) then
  return {'exhausted', attempts, redis.call('HGETALL', KEYS[1])}
end
local deadline = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', ARGV[2], 'step', 0,
           'lease_until', string.format('%.3f', deadline), 'worker', ARGV[4])
redis.call('ZADD', KEYS[2], deadline, ARGV[5])
return {'run', attempts, redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS[1]: the job; KEYS[2]: the leases; KEYS[3..]: counter hashes. ARGV: state, finished_at, ttl,
# cancel_wins, n, job id, then n field pairs, then counter updates of five values each: when (done
# only if the call ended as that: 'final' in the state asked for, 'cancelled' when a cancel won,
# or 'always'), command (HINCRBY, HINCRBYFLOAT or HSET), key index, field, value. Returns the
# state set, or false (nil) when the job was already final. The job's lease is dropped.
_FINISH = """
local st = redis.call('HGET', KEYS[1], 'state')
local n = tonumber(ARGV[5])
local done = 'none'
redis.call('ZREM', KEYS[2], ARGV[6])
if st and st ~= 'succeeded' and st ~= 'failed' and st ~= 'cancelled' then
  if ARGV[4] == '1' and redis.call('HGET', KEYS[1], 'cancel') == '1' then
    redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[2],
               'error_code', 'cancelled', 'error_message', 'cancelled')
    done = 'cancelled'
  else
    redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished_at', ARGV[2])
    for i = 7, 6 + 2 * n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
    done = 'final'
  end
  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
end
for i = 7 + 2 * n, #ARGV, 5 do
  if ARGV[i] == done or ARGV[i] == 'always' then
    redis.call(ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])], ARGV[i + 3], ARGV[i + 4])
  end
end
if done == 'final' then return ARGV[1] end
if done == 'cancelled' then return 'cancelled' end
return false
"""

_CANCEL = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'missing' end
if st == 'succeeded' or st == 'failed' or st == 'cancelled' then return 'terminal' end
redis.call('HSET', KEYS[1], 'cancel', '1')
if st == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1],
             'error_code', 'cancelled', 'error_message', ARGV[3])
  if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  return 'cancelled'
end
return 'cancelling'
"""

ClaimOutcome = Literal["run", "missing", "terminal", "cancel", "exhausted"]
CancelOutcome = Literal["missing", "terminal", "cancelled", "cancelling"]


# A counter update done with a job's final state: (command, hash key, field, value), the command
# one of COUNTER_COMMANDS (``service.jobs.metrics`` makes them).
CounterUpdate = tuple[str, str, str, int | float]
COUNTER_COMMANDS = frozenset({"HINCRBY", "HINCRBYFLOAT", "HSET"})


@dataclass(frozen=True)
class NewJob:
    """What the jobs created together share: kind, owner, parameters, webhook and batch."""

    kind: str
    owner: str
    params: dict[str, Any]
    callback_url: str | None = None
    batch_id: UUID | None = None

    def fields(self, job_id: UUID, params_json: str) -> dict[str, str]:
        """The hash of a new job (``params_json``: :attr:`params` encoded once for all)."""
        fields = {
            "id": str(job_id),
            "kind": self.kind,
            "state": "queued",
            "owner": self.owner,
            "created_at": repr(time.time()),
            "step": "0",
            "total": "0",
            "attempts": "0",
            "params": params_json,
        }
        if self.callback_url:
            fields["callback_url"] = self.callback_url
        if self.batch_id is not None:
            fields["batch_id"] = str(self.batch_id)
        return fields


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    attempts: int
    job: dict[str, str] | None = None  # the record as the claim left it (None: missing/terminal)


def _claim_from(reply: list[Any]) -> Claim:
    outcome, attempts, flat = reply
    job = dict(zip(flat[::2], flat[1::2], strict=True)) if flat else None
    return Claim(outcome=outcome, attempts=int(attempts), job=job)


def connect(url: str, *, retries: int = 8) -> redis.Redis:
    """A Redis client that returns ``str`` values and rides out a short outage (a Redis restart)
    by retrying with exponential backoff (about 10 s in all with the default ``retries``)."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        health_check_interval=30,
    )


class JobStore:
    """Jobs and batches in Redis. A running job holds a lease of ``lease_s`` seconds, taken by its
    claim and renewed by its worker (``worker.context.LeaseKeeper``); :meth:`reap` puts the jobs
    whose lease ran out back in their queue (both done by :attr:`leases`)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: int = 24 * 3600,
        lease_s: float = DEFAULT_LEASE_S,
        holder: str = "",
    ) -> None:
        self.r = client
        self.ttl_s = ttl_s
        self.holder = holder  # who claims: a worker's host and process, shown in the record
        self.leases = Leases(client, self.key, lease_s=lease_s)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._cancel = client.register_script(_CANCEL)

    @property
    def lease_s(self) -> float:
        """How long a claim or a renewal holds a running job (:attr:`leases`)."""
        return self.leases.lease_s

    @staticmethod
    def key(job_id: UUID | str) -> str:
        return f"{PREFIX}:job:{job_id}"

    # creation and reads ----------------------------------------------------------------------
    def create(
        self,
        job_id: UUID,
        *,
        kind: str,
        owner: str,
        params: dict[str, Any],
        callback_url: str | None = None,
        batch_id: UUID | None = None,
        task: TaskMessage | None = None,
    ) -> dict[str, str]:
        """Create the job's hash and, with ``task``, queue its task in the same transaction (both
        or neither); returns the hash as :meth:`get` would read it back."""
        job = NewJob(kind, owner, params, callback_url, batch_id)
        return self.create_many([job_id], job, task)[0]

    def create_many(
        self, job_ids: list[UUID], job: NewJob, task: TaskMessage | None = None
    ) -> list[dict[str, str]]:
        """:meth:`create` for several jobs alike (and one ``task`` for them all), in one
        transaction; their hashes, in order."""
        encoded = json.dumps(job.params)
        records = [job.fields(job_id, encoded) for job_id in job_ids]
        pipe = self.r.pipeline(transaction=True)
        for fields in records:
            pipe.hset(self.key(fields["id"]), mapping=fields)  # type: ignore[arg-type]
        scores = {fields["id"]: float(fields["created_at"]) for fields in records}
        self._index_add(pipe, "jobs", job.owner, scores)
        pipe.zadd(QUEUED, scores)  # until claimed (service.jobs.lost_messages)
        if task is not None:
            pipe.lpush(task.key, task.body)
        pipe.execute()
        return records

    def get(self, job_id: UUID | str) -> dict[str, str] | None:
        data: dict[str, str] = self.r.hgetall(self.key(job_id))  # type: ignore[assignment]
        return data or None

    def get_owned(self, job_id: UUID, owner: str) -> dict[str, str] | None:
        """The job if it exists and belongs to ``owner`` (another key's job reads as missing)."""
        job = self.get(job_id)
        if job is None or job.get("owner") != owner:
            return None
        return job

    def get_many(self, job_ids: list[str]) -> list[dict[str, str] | None]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.key(job_id))
        return [item or None for item in pipe.execute()]

    def params(self, job: dict[str, str]) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(job.get("params", "{}"))
        return loaded

    def is_active(self, job_id: UUID) -> bool:
        state = self.r.hget(self.key(job_id), "state")
        return state in ("queued", "running")

    # transitions ---------------------------------------------------------------------------
    def claim(self, job_id: UUID | str, max_attempts: int) -> Claim:
        """Count an attempt and mark the job running, holding a lease of :attr:`lease_s` for
        :attr:`holder`; the job's record comes back with the outcome, in the same round trip."""
        args: list[Any] = [max_attempts, time.time(), self.lease_s, self.holder, str(job_id)]
        reply = self._claim(keys=[self.key(job_id), LEASES, QUEUED], args=args)
        return _claim_from(reply)

    def renew(self, job_ids: Sequence[UUID | str]) -> list[bool]:
        """:meth:`Leases.renew <service.jobs.leases.Leases.renew>`."""
        return self.leases.renew(job_ids)

    def finish(self, job_id: UUID | str, state: str, **fields: Any) -> bool:
        """Move a non-terminal job to terminal ``state``; False if it already was terminal."""
        return self.finish_counted(job_id, state, fields) is not None

    def finish_counted(
        self,
        job_id: UUID | str,
        state: str,
        fields: dict[str, Any],
        *,
        counters: Sequence[CounterUpdate] = (),
        always: Sequence[CounterUpdate] = (),
        cancel_wins: bool = False,
        if_cancelled: Sequence[CounterUpdate] = (),
    ) -> str | None:
        """:meth:`finish` and, in the same round trip (one script, so atomically), counter
        updates: ``counters`` only if this call made the job final (a job already final is not
        counted twice), ``always`` in any case. With ``cancel_wins``, a job whose cancel was
        requested ends ``cancelled`` instead (its ``fields`` dropped, ``if_cancelled`` counted
        instead of ``counters``). Returns the state set, None if the job already was terminal."""
        if state not in TERMINAL:
            raise ValueError(f"not a terminal state: {state}")
        pairs: list[Any] = []
        for name, value in fields.items():
            if value is not None:
                plain = isinstance(value, str | int | float)
                pairs += [name, value if plain else json.dumps(value)]
        keys = [self.key(job_id), LEASES]
        args: list[Any] = [state, time.time(), self.ttl_s, int(cancel_wins), len(pairs) // 2]
        args += [str(job_id), *pairs]
        groups = (("final", counters), ("cancelled", if_cancelled), ("always", always))
        for when, updates in groups:
            for command, key, field, value in updates:
                if command not in COUNTER_COMMANDS:
                    raise ValueError(f"not a counter command: {command}")
                if key not in keys:
                    keys.append(key)
                args += [when, command, keys.index(key) + 1, field, value]
        ended = self._finish(keys=keys, args=args)
        return str(ended) if ended else None

    def fail(self, job_id: UUID | str, code: str, message: str) -> bool:
        return self.finish(job_id, "failed", error_code=code, error_message=message[:2000])

    def request_cancel(
        self, job_id: UUID | str, reason: str = "cancelled before it started"
    ) -> CancelOutcome:
        """Cancel: a queued job at once (with ``reason`` as its message), a running one at its
        next progress report."""
        outcome: CancelOutcome = self._cancel(
            keys=[self.key(job_id)], args=[time.time(), self.ttl_s, reason]
        )
        return outcome

    def progress(self, job_id: UUID | str, step: int, total: int, message: str = "") -> bool:
        """Record progress; returns True when a cancel was requested (the caller stops)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(self.key(job_id), mapping={"step": step, "total": total, "message": message})
        pipe.hget(self.key(job_id), "cancel")
        _, cancel = pipe.execute()
        return bool(cancel == "1")

    def cancel_requested(self, job_id: UUID | str) -> bool:
        return bool(self.r.hget(self.key(job_id), "cancel") == "1")

    # leases: running jobs whose worker is gone (service.jobs.leases) -------------------------
    def expired(self, limit: int = 100) -> list[str]:
        """Ids of running jobs whose lease ran out, by the Redis server's clock."""
        return self.leases.expired(limit)

    def reap(
        self, message_for: Callable[[str, str], TaskMessage], limit: int = 100
    ) -> Counter[str]:
        """:meth:`Leases.reap <service.jobs.leases.Leases.reap>`, a job ended cancelled kept for
        :attr:`ttl_s`."""
        return self.leases.reap(message_for, self.ttl_s, limit)

    def job_ids(self) -> Iterator[str]:
        """Every job id with a record (a SCAN: for start-up checks, not for requests)."""
        start = len(self.key(""))
        for key in self.r.scan_iter(match=self.key("*"), count=1000):
            yield str(key)[start:]

    # idempotency ---------------------------------------------------------------------------
    def reserve_idempotency(self, owner: str, key: str, job_id: UUID) -> str | None:
        """Bind ``key`` to ``job_id`` for this owner; the earlier job id if already bound."""
        name = self._idem_key(owner, key)
        if self.r.set(name, str(job_id), nx=True, ex=self.ttl_s):
            return None
        existing = self.r.get(name)
        return str(existing) if existing else None

    def rebind_idempotency(self, owner: str, key: str, job_id: UUID) -> None:
        """Point ``key`` at ``job_id`` (the earlier job it named never got created)."""
        self.r.set(self._idem_key(owner, key), str(job_id), ex=self.ttl_s)

    @staticmethod
    def _idem_key(owner: str, key: str) -> str:
        return f"{PREFIX}:idem:{owner}:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"

    # batches -------------------------------------------------------------------------------
    def create_batch(
        self, batch_id: UUID, owner: str, job_ids: list[UUID], names: list[str]
    ) -> None:
        key = f"{PREFIX}:batch:{batch_id}"
        ttl = self.ttl_s * 2
        pipe = self.r.pipeline(transaction=True)
        created = time.time()
        pipe.hset(key, mapping={"owner": owner, "created_at": created, "size": len(job_ids)})
        self._index_add(pipe, "batches", owner, {str(batch_id): created}, ttl)
        pipe.rpush(f"{key}:items", *[str(j) for j in job_ids])
        pipe.rpush(f"{key}:names", *names)
        for name in (key, f"{key}:items", f"{key}:names"):
            pipe.expire(name, ttl)
        pipe.execute()

    def get_batch(
        self, batch_id: UUID, owner: str
    ) -> tuple[dict[str, str], list[str], list[str]] | None:
        key = f"{PREFIX}:batch:{batch_id}"
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.lrange(f"{key}:items", 0, -1)
        pipe.lrange(f"{key}:names", 0, -1)
        meta, items, names = pipe.execute()
        if not meta or meta.get("owner") != owner:
            return None
        return meta, items, names

    # listings (per owner, newest first) -----------------------------------------------------
    def _index_key(self, what: str, owner: str) -> str:
        return f"{PREFIX}:owner:{hashlib.sha256(owner.encode()).hexdigest()[:32]}:{what}"

    def _index_add(
        self, pipe: Any, what: str, owner: str, scores: dict[str, float], ttl: int | None = None
    ) -> None:
        """Add ids (scored by creation time) to the owner's index and drop entries older than
        their records can live, so the index stays as small as what can still be read."""
        key = self._index_key(what, owner)
        keep = ttl or self.ttl_s * 2
        pipe.zadd(key, scores)
        pipe.zremrangebyscore(key, "-inf", time.time() - keep)
        pipe.expire(key, keep)

    def list_jobs(
        self, owner: str, *, limit: int, before: float | None = None
    ) -> tuple[list[dict[str, str]], float | None]:
        """The owner's jobs, newest first, created before ``before`` (a cursor: the previous
        page's ``next``); expired records are dropped from the index on the way."""
        ids, next_cursor = self._page("jobs", owner, limit, before)
        found = self.get_many(ids)
        gone = [job_id for job_id, job in zip(ids, found, strict=True) if job is None]
        if gone:
            self.r.zrem(self._index_key("jobs", owner), *gone)
        return [job for job in found if job is not None], next_cursor

    def list_batches(
        self, owner: str, *, limit: int, before: float | None = None
    ) -> tuple[list[tuple[str, dict[str, str], list[str | None]]], float | None]:
        """The owner's batches, newest first: ``(id, meta, item states)`` each."""
        ids, next_cursor = self._page("batches", owner, limit, before)
        out = []
        for batch_id in ids:
            key = f"{PREFIX}:batch:{batch_id}"
            pipe = self.r.pipeline(transaction=False)
            pipe.hgetall(key)
            pipe.lrange(f"{key}:items", 0, -1)
            meta, items = pipe.execute()
            if not meta or meta.get("owner") != owner:
                self.r.zrem(self._index_key("batches", owner), batch_id)
                continue
            pipe = self.r.pipeline(transaction=False)
            for job_id in items:
                pipe.hget(self.key(job_id), "state")
            out.append((batch_id, meta, list(pipe.execute())))
        return out, next_cursor

    def _page(
        self, what: str, owner: str, limit: int, before: float | None
    ) -> tuple[list[str], float | None]:
        """Up to ``limit`` ids created before ``before``, newest first, and the next cursor.

        The cursor is a creation time and the next page starts strictly below it, so a full page
        also takes every further record that shares its last creation time (records created in
        one call can share it to the float's resolution): a page may then hold a few more than
        ``limit``, and none is skipped."""
        key = self._index_key(what, owner)
        top = f"({before}" if before is not None else "+inf"
        rows: list[tuple[str, float]] = self.r.zrevrangebyscore(  # type: ignore[assignment]
            key, top, "-inf", start=0, num=limit, withscores=True
        )
        ids = [str(member) for member, _ in rows]
        if len(rows) < limit:
            return ids, None
        last = float(rows[-1][1])
        tied: list[str] = self.r.zrevrangebyscore(key, last, last)  # type: ignore[assignment]
        seen = set(ids)
        ids += [str(member) for member in tied if str(member) not in seen]
        return ids, last
