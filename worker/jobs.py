"""What a task does, without Celery: claim the job, run it, store results, finish it once.

``execute`` owns the lifecycle. It counts the attempt (a job whose worker keeps dying is failed
after ``max_attempts``), honours a cancel requested before start, maps failures to readable
errors (a soft time limit, the library refusing the request, a bug), records metrics and queues
the webhook. Results are written with atomic renames keyed by the job id, and the final state is
set by a compare-and-set in Redis, so a re-delivered job overwrites the same files and cannot
change an already final state.

Round trips to Redis per job, few because a batch's notch items take a few ms each: the claim,
which brings the job's record back; the progress reports but a restore's last; the finish, one
script that sets the final state, writes that last report and records the metrics. A cancel is
honoured before start, at each progress report, and for a restore at the finish too (a cancel
requested during its last step wins).

Redis may go away mid-job (a restart, a kill): progress reports are then skipped (the work goes
on), and the claim and the final state are retried with backoff for up to
``SAGD_FINAL_WRITE_RETRY_S``, so the job's result is stored once Redis is back instead of the job
being dropped. While it runs, the job's lease is renewed by ``WorkerContext.leases``; if the
process dies, the lease runs out and the reaper (``worker.hooks.Reaper``) requeues the job.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import redis
from celery.exceptions import SoftTimeLimitExceeded

from service.jobs.contracts import AnalyzeParams, ModelRef, RestoreParams, TrainParams
from service.jobs.images import decode_image, encode_png, read_image
from service.jobs.jobstore import Claim
from service.jobs.metrics import Update, job_finished_updates, steps_updates
from service.jobs.registry import ModelNotFoundError
from service.jobs.zips import read_zip_images
from worker.context import WorkerContext
from worker.engine import EngineError
from worker.previews import PreviewingProgress, job_preview_writer

logger = logging.getLogger(__name__)

Result = dict[str, Any]
T = TypeVar("T")
#: Redis errors that pass once Redis is back (refused, reset, timed out, loading its AOF).
REDIS_OUTAGE = (redis.ConnectionError, redis.TimeoutError)
PROGRESS_PAUSE_S = 5.0  # after a failed progress report, the next ones wait this long
# A job body computes and returns the job's result summary, or a function that stores its files
# and returns the summary (so that storing can overlap the next job's compute in a chunk).
Body = Callable[[WorkerContext, UUID, dict[str, str], "Reporter"], Result | Callable[[], Result]]


class JobCancelled(Exception):
    """Raised from a progress callback when the job's cancel flag is set; stops the work."""


class Reporter:
    """Progress callback: records step/total in Redis and raises :class:`JobCancelled`.

    After :meth:`defer_final`, the report of the last step (``step >= total``: only the storing
    is left) is not sent: the job's finish writes it with the final state and makes that
    report's cancel check, so a cancel requested by then wins over success (the job ends
    cancelled; result files it already wrote are never served and expire with it). One round
    trip less per job."""

    def __init__(self, ctx: WorkerContext, job_id: UUID) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.calls = 0
        self.started = time.perf_counter()
        self._defer_final = False
        self._pending: tuple[int, int, str] | None = None
        self._offline_until = 0.0

    def defer_final(self) -> None:
        self._defer_final = True

    def step(self, step: int, total: int) -> None:
        self.report(step, total, "")

    def train_step(self, step: int, total: int, values: dict[str, float]) -> None:
        self.report(step, total, ", ".join(f"{k}={v:.4g}" for k, v in sorted(values.items())))

    def report(self, step: int, total: int, message: str) -> None:
        self.calls += 1
        if self._defer_final and step >= total:
            self._pending = (int(step), int(total), message)
            return
        self._pending = None
        self._send(int(step), int(total), message)

    def deferred(self) -> dict[str, Any] | None:
        """The last report kept by :meth:`defer_final`, as job fields (None if there is none)."""
        if self._pending is None:
            return None
        step, total, message = self._pending
        return {"step": step, "total": total, "message": message}

    def _send(self, step: int, total: int, message: str) -> None:
        """Report, unless Redis was found unreachable in the last :data:`PROGRESS_PAUSE_S`:
        progress is advice, so a failed report is logged and the work goes on."""
        now = time.monotonic()
        if now < self._offline_until:
            return
        try:
            cancelled = self.ctx.jobs.progress(self.job_id, step, total, message)
        except REDIS_OUTAGE as exc:
            self._offline_until = time.monotonic() + PROGRESS_PAUSE_S
            logger.warning("job %s: progress not recorded (%s); the work goes on", self.job_id, exc)
            return
        if cancelled:
            raise JobCancelled(f"job {self.job_id} cancelled at step {step}/{total}")


def until_redis_answers(ctx: WorkerContext, what: str, call: Callable[[], T]) -> T:
    """``call()``, retried with backoff (0.5 s doubling to 10 s) while Redis is unreachable, for
    up to ``SAGD_FINAL_WRITE_RETRY_S``; then the last error is raised. The calls retried are the
    claim and the finish, atomic scripts: if a first run took effect but its answer was lost, a
    claim run again counts one attempt more (still capped), and a finish run again answers
    "already final"."""
    deadline = time.monotonic() + ctx.settings.final_write_retry_s
    pause = 0.5
    while True:
        try:
            return call()
        except REDIS_OUTAGE as exc:
            if time.monotonic() + pause > deadline:
                logger.error("%s: Redis still unreachable, giving up: %s", what, exc)
                raise
            logger.warning("%s: Redis unreachable (%s); retrying in %.1f s", what, exc, pause)
            time.sleep(pause)
            pause = min(2 * pause, 10.0)


def execute(ctx: WorkerContext, job_id: str, body: Body) -> str:
    """Run one job through its lifecycle; returns the state it ended in (or why it was skipped)."""
    return _run(ctx, job_id, body).state


def execute_many(
    ctx: WorkerContext,
    job_ids: list[str],
    body: Body,
    requeue: Callable[[list[str]], None],
) -> dict[str, int]:
    """Run several jobs in one task, each with its own lifecycle (claim, attempts, cancel, state,
    webhook): micro-batching of a batch's cheap items, so the queue's per-task cost is paid once
    per chunk. A job's storing (encoding and writing its files, then its final state) runs on a
    second thread while the next job computes, at most one behind; a job reads as succeeded only
    once its files are written. If the soft time limit stops one job, it fails and the jobs not
    yet started go back to the queue (``requeue``), never lost or charged an attempt."""
    ends: list[Future[str] | str] = []  # per job run: its final state, or its storing
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sagd-store") as storer:
        for index, job_id in enumerate(job_ids):
            try:
                run = _run(ctx, job_id, body, defer=True)
            except SoftTimeLimitExceeded:  # between two jobs' bodies (claim, finish): none lost
                _requeue_rest(job_ids[index:], requeue)
                break
            ends.append(storer.submit(run.store) if run.store is not None else run.state)
            stop = run.timed_out
            previous = ends[-2] if len(ends) > 1 else None
            try:  # at most one job's results in memory, waiting to be stored
                if isinstance(previous, Future):
                    previous.result()
            except SoftTimeLimitExceeded:
                stop = True
            if stop:
                _requeue_rest(job_ids[index + 1 :], requeue)
                break
    counts: dict[str, int] = {}  # the pool has finished every storing it was given
    for end in ends:
        state = end.result() if isinstance(end, Future) else end
        counts[state] = counts.get(state, 0) + 1
    return counts


def _requeue_rest(rest: list[str], requeue: Callable[[list[str]], None]) -> None:
    if rest:
        logger.warning("time limit in a chunk: %d jobs go back to the queue", len(rest))
        requeue(rest)


@dataclass(frozen=True)
class Run:
    """How a job's run ended: its state, whether the soft time limit stopped it, and (with
    ``defer``) the storing still to do, which returns the final state."""

    state: str
    timed_out: bool = False
    store: Callable[[], str] | None = None


def _run(ctx: WorkerContext, job_id: str, body: Body, *, defer: bool = False) -> Run:
    uid = UUID(job_id)
    max_attempts = ctx.settings.max_attempts
    claim = until_redis_answers(
        ctx, f"job {job_id}: claim", lambda: ctx.jobs.claim(uid, max_attempts)
    )
    job = claim.job or {}  # the record as the claim left it (same round trip)
    if claim.outcome != "run":
        return Run(_not_run(ctx, uid, claim, job))
    ctx.leases.hold(job_id)  # renewed until the job is final (or this process dies)
    handed_over = False  # a deferred storing releases the lease itself, on the storing thread
    try:
        reporter = Reporter(ctx, uid)
        outcome = _attempt(ctx, job_id, job, lambda: body(ctx, uid, job, reporter))
        result = outcome.fields.get("result")
        if outcome.state == "succeeded" and callable(result):  # the body left its storing to us
            store: Callable[[], Result] = result

            def finish_storing() -> str:
                try:
                    return _finish(ctx, uid, job, reporter, _attempt(ctx, job_id, job, store))
                finally:
                    ctx.leases.release(job_id)

            if defer:
                handed_over = True
                return Run("succeeded", store=finish_storing)
            return Run(finish_storing())
        return Run(_finish(ctx, uid, job, reporter, outcome), timed_out=outcome.timed_out)
    finally:
        if not handed_over:
            ctx.leases.release(job_id)


def _not_run(ctx: WorkerContext, uid: UUID, claim: Claim, job: dict[str, str]) -> str:
    """A claim that does not run the job: missing or already final (nothing to do), cancelled
    before it started, or out of attempts. Returns the state to report."""
    if claim.outcome == "cancel":
        finish_job(
            ctx, uid, "cancelled", job=job, error_code="cancelled", error_message="cancelled"
        )
        return "cancelled"
    if claim.outcome == "exhausted":
        message = f"worker lost too many times ({claim.attempts - 1} attempts)"
        finish_job(ctx, uid, "failed", job=job, error_code="worker_lost", error_message=message)
        return "failed"
    logger.info("job %s: %s, nothing to do", uid, claim.outcome)
    return claim.outcome


@dataclass(frozen=True)
class _Outcome:
    state: str
    fields: dict[str, Any]
    timed_out: bool = False


def _attempt(
    ctx: WorkerContext, job_id: str, job: dict[str, str], work: Callable[[], Any]
) -> _Outcome:
    """Run ``work`` and map what it raised to the job's final state and readable error."""
    try:
        result = work()
    except JobCancelled:
        return _Outcome("cancelled", {"error_code": "cancelled", "error_message": "cancelled"})
    except SoftTimeLimitExceeded:
        limit = _soft_limit(ctx, job.get("kind", "restore"))
        message = f"exceeded the time limit of {limit} s"
        return _Outcome("failed", {"error_code": "time_limit", "error_message": message}, True)
    except (EngineError, ModelNotFoundError) as exc:
        return _Outcome("failed", {"error_code": "rejected", "error_message": str(exc)})
    except Exception:
        logger.exception("job %s failed", job_id)
        message = f"unexpected error in the worker (see its log for job {job_id})"
        return _Outcome("failed", {"error_code": "internal_error", "error_message": message})
    return _Outcome("succeeded", {"result": result})


def _finish(
    ctx: WorkerContext, uid: UUID, job: dict[str, str], reporter: Reporter, outcome: _Outcome
) -> str:
    """Finish the job with its outcome (and its deferred last report); returns the state it
    ended in (the outcome's if it already was final)."""
    steps = (reporter.calls, time.perf_counter() - reporter.started)
    last = reporter.deferred()
    fields = {**outcome.fields, **(last or {})}
    wins = last is not None and outcome.state == "succeeded"
    ended = finish_job(ctx, uid, outcome.state, job=job, steps=steps, cancel_wins=wins, **fields)
    return ended or outcome.state


def _soft_limit(ctx: WorkerContext, kind: str) -> int:
    s = ctx.settings
    return s.train_soft_time_limit_s if kind == "train" else s.restore_soft_time_limit_s


def finish_job(
    ctx: WorkerContext,
    uid: UUID,
    state: str,
    *,
    job: dict[str, str] | None = None,
    steps: tuple[int, float] | None = None,
    cancel_wins: bool = False,
    **fields: Any,
) -> str | None:
    """Make the job final once (compare-and-set) and record its metrics in the same round trip,
    then queue its webhook; a job that already was final is left alone and not counted again
    (its sampler ``steps``, (count, seconds), are counted in any case: that work was done).
    ``cancel_wins``: a job whose cancel was requested ends cancelled instead. ``job``: its record
    as read at the start (its kind, creation time and callback do not change), to save reading it
    again. Returns the state set, None if the job already was final."""
    if job is None:
        job = ctx.jobs.get(uid) or {}
    counters: list[Update] = []
    if_cancelled: list[Update] = []
    if job.get("created_at"):
        kind, latency = job.get("kind", "?"), time.time() - float(job["created_at"])
        counters = job_finished_updates(kind, state, latency)
        if cancel_wins:
            if_cancelled = job_finished_updates(kind, "cancelled", latency)
    ended = until_redis_answers(
        ctx,
        f"job {uid}: final state {state}",
        lambda: ctx.jobs.finish_counted(
            uid,
            state,
            fields,
            counters=counters,
            always=steps_updates(*steps) if steps is not None else [],
            cancel_wins=cancel_wins,
            if_cancelled=if_cancelled,
        ),
    )
    if ended is None:
        logger.info("job %s was already final; %s not recorded", uid, state)
        return None
    if job.get("callback_url"):
        ctx.notify(str(uid))
    return ended


# job bodies ------------------------------------------------------------------------------------
def restore_body(
    ctx: WorkerContext, uid: UUID, job: dict[str, str], rep: Reporter
) -> Callable[[], Result]:
    """Restore the job's input; returns the storing of its result (PNG, uncertainty, report)."""
    params = _restore_params(job.get("params", "{}"))
    folder, image = read_restore_input(ctx, uid)
    models: list[Any] = []
    used: dict[str, Any] = {}
    if not params.is_model_free:  # a learned method, or auto given models (never the default)
        refs = params.models or [ModelRef(name=ctx.settings.default_model)]
        for ref in refs:
            version, model = ctx.cache.get(ref.name, ref.version)
            models.append(model)
            used[ref.name] = version
        used = {"models": used, "model": ",".join(f"{n}:{v}" for n, v in used.items())}
    rep.defer_final()  # after the last step only the storing is left (see Reporter)
    progress: Callable[[int, int], None] = rep.step
    if not params.is_model_free:  # a network runs (sampling, or auto's read): previews meanwhile
        progress = PreviewingProgress(rep.step, job_preview_writer(ctx.storage, folder))
    out = ctx.engine.restore(image, params, models, device=ctx.device, progress=progress)
    report = {**out.report, **used, "method": params.method, "device": ctx.device}

    def store() -> Result:
        files = {"result.png": encode_png(out.image, params.output_bit_depth)}
        if out.uncertainty is not None:
            peak = float(out.uncertainty.max()) if out.uncertainty.size else 0.0
            scaled = out.uncertainty / peak if peak > 0 else out.uncertainty
            report["uncertainty_scale"] = peak
            files["uncertainty.png"] = encode_png(scaled)
        files["report.json"] = report_json(report)
        ctx.storage.write_job_files(folder, files)
        return job_summary(report)

    return store


def job_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a restore job's record carries of its report (``GET /v1/jobs/{id}`` shows it): the
    scalar fields, the warnings and what was done to each band (the full report is a file)."""
    summary: dict[str, Any] = {
        k: v for k, v in report.items() if isinstance(v, str | int | float | bool)
    }
    summary["warnings"] = [str(w) for w in report.get("warnings") or []]
    summary["band_actions"] = [str(b.get("action")) for b in report.get("bands") or []]
    return summary


def read_restore_input(ctx: WorkerContext, uid: UUID) -> tuple[Path, Any]:
    """A restore job's folder (resolved once: the files in it have fixed names) and its input
    image."""
    folder = ctx.storage.job_dir(uid)
    return folder, read_image(folder / "input.png")


def report_json(report: dict[str, Any]) -> bytes:
    """A report as ``Storage.write_json`` writes JSON (indented, keys sorted)."""
    return json.dumps(report, indent=2, sort_keys=True, default=str).encode()


@functools.lru_cache(maxsize=64)
def _restore_params(raw: str) -> RestoreParams:
    """A job's restore parameters from their JSON. The items of a batch share theirs, so they are
    validated once per distinct JSON (the model is frozen, so one instance can be shared)."""
    return RestoreParams.model_validate(json.loads(raw))


def train_body(ctx: WorkerContext, uid: UUID, job: dict[str, str], rep: Reporter) -> dict[str, Any]:
    params = TrainParams.model_validate(ctx.jobs.params(job))
    s = ctx.settings
    images = None
    if params.dataset is None:
        blob = ctx.storage.job_file(uid, "dataset.zip").read_bytes()
        members = read_zip_images(
            blob,
            max_entries=s.max_zip_entries,
            max_total_bytes=s.max_zip_uncompressed_bytes,
            max_member_bytes=s.max_upload_bytes,
        )
        images = [decode_image(m.data, max_pixels=s.max_pixels, min_side=1).pixels for m in members]
    ctx.storage.models_dir()
    # Staged in a per-job folder: a re-delivered job resumes from its last checkpoint.
    staged = ctx.storage.path("models", params.model_name, f".staging-{uid}")
    staged.parent.mkdir(parents=True, exist_ok=True)
    try:
        meta = ctx.engine.train(
            params, staged, images=images, device=ctx.device, progress=rep.train_step
        )
        version = ctx.registry.add_version(params.model_name, staged, {**meta, "job_id": str(uid)})
    except BaseException:  # the job ends here (a killed process never gets here: it resumes)
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return {"model": params.model_name, "version": version, "scores": meta.get("scores", {})}


def analyze_body(
    ctx: WorkerContext, uid: UUID, job: dict[str, str], rep: Reporter
) -> dict[str, Any]:
    AnalyzeParams.model_validate(ctx.jobs.params(job))
    image = read_image(ctx.storage.job_file(uid, "input.png"))
    analysis = ctx.engine.analyze(image)
    ctx.storage.write_json(ctx.storage.job_file(uid, "analysis.json"), analysis)
    return analysis
