"""Job leases: who holds a running job, and what becomes of it when its holder is gone.

A running job holds a lease: a deadline in the job's record (``lease_until``) and in the
:data:`LEASES` sorted set (job ids scored by that deadline). The claim takes it and the finish
drops it (``service.jobs.jobstore``, in the same scripts as those transitions); here its worker
renews it (:meth:`Leases.renew`) and the reaper puts back in their queue the running jobs whose
lease ran out (:meth:`Leases.expired`, :meth:`Leases.reap`). Deadlines are in the Redis server's
clock (``TIME``), so workers on machines whose clocks disagree still agree on when a lease ran out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import redis

from service.jobs.lost_messages import QUEUED

if TYPE_CHECKING:
    from service.jobs.queue import TaskMessage

#: The running jobs' leases: a sorted set of job ids scored by the deadline of their lease (a key
#: under the job store's ``sagd`` prefix).
LEASES = "sagd:leases"
DEFAULT_LEASE_S = 60.0
REQUEUED_MESSAGE = "requeued: its worker stopped renewing the job's lease (worker lost)"

#: Lua that sets ``now`` to the Redis server's clock, in seconds (millisecond precision).
SERVER_NOW = (
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) + math.floor(tonumber(t[2]) / 1000) / 1000\n"
)

# KEYS[1]: the job, KEYS[2]: the leases. ARGV: lease seconds, id. Extends the lease of a running
# job; 0 (and the lease dropped) when the job is no longer running.
_RENEW = (
    SERVER_NOW
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 0
end
local deadline = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'lease_until', string.format('%.3f', deadline))
redis.call('ZADD', KEYS[2], deadline, ARGV[2])
return 1
"""
)

# KEYS[1]: the job, KEYS[2]: the leases, KEYS[3]: its queue, KEYS[4]: the queued jobs
# (service.jobs.lost_messages). ARGV: id, task message, ttl, message.
# A running job whose lease ran out (its worker stopped renewing it: killed, or cut off from
# Redis for longer than the lease) goes back to its queue, or ends cancelled if a cancel was
# asked for; the next claim counts the attempt and fails it once it is out of attempts.
_REAP = (
    SERVER_NOW
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 'gone'
end
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') or 0
if lease > now then
  redis.call('ZADD', KEYS[2], lease, ARGV[1])
  return 'live'
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], 'lease_until', 'worker')
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', string.format('%.3f', now),
             'error_code', 'cancelled', 'error_message', 'cancelled')
  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
  return 'cancelled'
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'message', ARGV[4])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], now, ARGV[1])
return 'requeued'
"""
)

ReapOutcome = Literal["gone", "live", "cancelled", "requeued"]


class Leases:
    """The leases of the jobs in Redis: ``job_key`` names a job's record (``JobStore.key``), and
    a lease lasts ``lease_s`` seconds from its claim or its last renewal."""

    def __init__(
        self,
        client: redis.Redis,
        job_key: Callable[[UUID | str], str],
        *,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.r = client
        self.job_key = job_key
        self.lease_s = lease_s
        self._renew = client.register_script(_RENEW)
        self._reap = client.register_script(_REAP)

    def renew(self, job_ids: Sequence[UUID | str]) -> list[bool]:
        """Extend the leases of running jobs by :attr:`lease_s` from now (one round trip); False
        for a job that is no longer running."""
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            self._renew(
                keys=[self.job_key(job_id), LEASES], args=[self.lease_s, str(job_id)], client=pipe
            )
        return [bool(done) for done in pipe.execute()]

    def expired(self, limit: int = 100) -> list[str]:
        """Ids of running jobs whose lease ran out, by the Redis server's clock."""
        seconds, micros = self.r.time()
        now = float(seconds) + float(micros) / 1e6
        found = self.r.zrangebyscore(LEASES, "-inf", now, start=0, num=limit)
        return [str(member) for member in found]

    def reap(
        self, message_for: Callable[[str, str], TaskMessage], ttl_s: int, limit: int = 100
    ) -> Counter[str]:
        """Put every running job whose lease ran out back in its queue, with the task message
        ``message_for(kind, job id)`` (or end it cancelled, its record kept ``ttl_s``, if a cancel
        was asked for), each in one atomic script, so that several reapers (one per worker) never
        requeue a job twice and a lease renewed meanwhile wins. Counts by outcome (``requeued``,
        ``cancelled``; ``live`` and ``gone``: nothing done)."""
        counts: Counter[str] = Counter()
        for job_id in self.expired(limit):
            kind = str(self.r.hget(self.job_key(job_id), "kind") or "restore")
            task = message_for(kind, job_id)
            keys = [self.job_key(job_id), LEASES, task.key, QUEUED]
            args: list[Any] = [job_id, task.body, ttl_s, REQUEUED_MESSAGE]
            counts[str(self._reap(keys=keys, args=args))] += 1
        return counts
