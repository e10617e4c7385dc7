"""Prometheus metrics kept in Redis, so API replicas and workers on other machines share them.

Workers record finished jobs (latency histogram per kind, counts per final state) and sampler steps
(steps and seconds, hence steps/s): the counter updates made by :func:`job_finished_updates` and
:func:`steps_updates` go with a job's final state in one script (``JobStore.finish_counted``), or
on their own through :class:`MetricsRecorder`. The API exposes them, plus the queue depths read
from the broker lists, through :class:`RedisCollector` at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import cast

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from service.jobs.jobstore import CounterUpdate

logger = logging.getLogger(__name__)
KEY = "sagd:metrics"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
# kombu's Redis transport keeps one list per queue and priority step (0 is the bare name).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


# (command, hash key, field, value): the shape JobStore.finish_counted takes with a final state.
Update = CounterUpdate


def job_finished_updates(kind: str, state: str, latency_s: float) -> list[Update]:
    """The counter updates that record a finished job (its count per kind and state, and its
    latency in the histogram of its kind)."""
    hist = f"{KEY}:latency:{kind}"
    updates: list[Update] = [("HINCRBY", f"{KEY}:jobs", f"{kind}|{state}", 1)]
    updates += [("HINCRBY", hist, str(bound), 1) for bound in LATENCY_BUCKETS if latency_s <= bound]
    updates.append(("HINCRBY", hist, "+Inf", 1))
    updates.append(("HINCRBYFLOAT", hist, "sum", float(latency_s)))
    return updates


def steps_updates(steps: int, seconds: float) -> list[Update]:
    """The counter updates that record a job's sampler steps (none for a job without steps)."""
    if steps <= 0:
        return []
    key = f"{KEY}:steps"
    return [
        ("HINCRBY", key, "steps", steps),
        ("HINCRBYFLOAT", key, "seconds", max(seconds, 0.0)),
        ("HSET", key, "last_rate", steps / seconds if seconds > 0 else 0.0),
    ]


class MetricsRecorder:
    """The counter updates applied on their own, one pipeline each (tests, tools). The worker
    sends them with the job's final state instead, in one round trip
    (``JobStore.finish_counted``)."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def job_finished(self, kind: str, state: str, latency_s: float) -> None:
        self._apply(job_finished_updates(kind, state, latency_s))

    def steps(self, steps: int, seconds: float) -> None:
        self._apply(steps_updates(steps, seconds))

    def _apply(self, updates: list[Update]) -> None:
        if not updates:
            return
        pipe = self.r.pipeline(transaction=False)
        for command, key, field, value in updates:
            pipe.execute_command(command, key, field, value)
        pipe.execute()


def queue_depth(client: redis.Redis, queue: str) -> int:
    pipe = client.pipeline(transaction=False)
    for suffix in _PRIORITY_SUFFIXES:
        pipe.llen(queue + suffix)
    return int(sum(pipe.execute()))


class RedisCollector(Collector):
    """API side: reads the shared counters on every scrape."""

    def __init__(self, client: redis.Redis, queues: Iterable[str], kinds: Iterable[str]) -> None:
        self.r = client
        self.queues = tuple(queues)
        self.kinds = tuple(kinds)

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except redis.RedisError as exc:  # a scrape must not fail because Redis is down
            logger.warning("metrics unavailable: %s", exc)
            up = GaugeMetricFamily("sagd_redis_up", "1 if Redis answered the scrape")
            up.add_metric([], 0.0)
            yield up

    def _hash(self, name: str) -> dict[str, str]:
        return cast(dict[str, str], self.r.hgetall(name))

    def _collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("sagd_queue_depth", "jobs waiting in the queue", labels=["queue"])
        for queue in self.queues:
            depth.add_metric([queue], float(queue_depth(self.r, queue)))
        yield depth

        jobs = CounterMetricFamily("sagd_jobs", "finished jobs", labels=["kind", "state"])
        for field, value in sorted(self._hash(f"{KEY}:jobs").items()):
            kind, _, state = str(field).partition("|")
            jobs.add_metric([kind, state], float(value))
        yield jobs

        latency = HistogramMetricFamily(
            "sagd_job_latency_seconds", "time from submission to a final state", labels=["kind"]
        )
        for kind in self.kinds:
            raw = self._hash(f"{KEY}:latency:{kind}")
            if not raw:
                continue
            buckets = [(str(b), float(raw.get(str(b), 0))) for b in LATENCY_BUCKETS]
            buckets.append(("+Inf", float(raw.get("+Inf", 0))))
            latency.add_metric([kind], buckets, sum_value=float(raw.get("sum", 0.0)))
        yield latency

        steps = self._hash(f"{KEY}:steps")
        total = CounterMetricFamily("sagd_sampler_steps", "sampler/training steps run")
        total.add_metric([], float(steps.get("steps", 0)))
        yield total
        seconds = CounterMetricFamily("sagd_sampler_step_seconds", "seconds spent in those steps")
        seconds.add_metric([], float(steps.get("seconds", 0.0)))
        yield seconds
        rate = GaugeMetricFamily("sagd_steps_per_second", "steps/s of the last finished job")
        rate.add_metric([], float(steps.get("last_rate", 0.0)))
        yield rate
        up = GaugeMetricFamily("sagd_redis_up", "1 if Redis answered the scrape")
        up.add_metric([], 1.0)
        yield up
