"""Start-up reconciliation: compare the job folders on disk with the job records in Redis, report
what disagrees, and give the running records that have no lease entry one that has run out (so
the reaper, ``service.jobs.leases``, requeues them)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from service.jobs.jobstore import PREFIX, JobStore
from service.jobs.leases import LEASES

logger = logging.getLogger(__name__)
NEEDS_FOLDER = ("restore", "analyze")  # kinds whose input lives in the job's folder
RECONCILED_KEY = f"{PREFIX}:reconciled"  # set for a minute by whoever reported last
RECONCILE_GRACE_S = 600.0  # a younger folder may be a job being created: not an orphan


@dataclass(frozen=True)
class Reconciliation:
    """How the job folders on disk and the job records in Redis compare (:func:`reconcile`)."""

    records: int
    folders: int
    folders_without_record: int  # expired records or lost ones: swept once past the result TTL
    waiting_without_folder: int  # queued or running restores/analyses whose input is gone
    running: int
    running_without_lease: int  # from before leases, or whose lease entry was lost: now leased
    running_lease_expired: int  # their worker is gone: the reaper requeues them

    def summary(self, ttl_s: int) -> str:
        return (
            f"{self.records} job records, {self.folders} job folders; "
            f"{self.folders_without_record} folders without a record (deleted by the result "
            f"sweeper once older than {ttl_s} s); {self.waiting_without_folder} queued or "
            f"running jobs without their folder (they will fail); {self.running} running, of "
            f"which {self.running_lease_expired} with their lease run out (requeued by the "
            f"reaper) and {self.running_without_lease} had no lease (given one that has run out)"
        )


def reconcile(
    jobs: JobStore, folders: Mapping[str, float], *, grace_s: float = 600
) -> Reconciliation:
    """Compare the job folders (``folders``: job id → last change, epoch seconds) with the
    records in Redis; a folder changed in the last ``grace_s`` may be a job being created now and
    is not counted without a record. Running records that the reaper would never see (no entry
    in :data:`LEASES`) get an entry whose lease has run out, so the reaper requeues them; nothing
    else is changed here."""
    seen: set[str] = set()
    waiting_without_folder = running = without_lease = expired = 0
    now = time.time()
    ids = list(jobs.job_ids())
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        pipe = jobs.r.pipeline(transaction=False)
        for job_id in chunk:
            pipe.hmget(jobs.key(job_id), ["state", "kind", "lease_until"])
            pipe.zscore(LEASES, job_id)
        replies = pipe.execute()
        for index, job_id in enumerate(chunk):
            (state, kind, lease), score = replies[2 * index], replies[2 * index + 1]
            if state is None:
                continue
            seen.add(job_id)
            if state in ("queued", "running") and kind in NEEDS_FOLDER and job_id not in folders:
                waiting_without_folder += 1
            if state != "running":
                continue
            running += 1
            if score is None:
                without_lease += 1
                jobs.r.zadd(LEASES, {job_id: float(lease or 0)})
            if float(lease or 0) <= now:
                expired += 1
    return Reconciliation(
        records=len(seen),
        folders=len(folders),
        folders_without_record=sum(
            job_id not in seen and changed < now - grace_s for job_id, changed in folders.items()
        ),
        waiting_without_folder=waiting_without_folder,
        running=running,
        running_without_lease=without_lease,
        running_lease_expired=expired,
    )


def report_reconciliation(
    jobs: JobStore, folders: Mapping[str, float], ttl_s: int, *, once: bool
) -> Reconciliation | None:
    """:func:`reconcile` and log the outcome (a warning when something disagrees). With
    ``once``, only if nobody did in the last minute (several workers starting together report
    once; the embedded runner reports without ``once``, and the workers it starts then do not);
    None when skipped."""
    if not jobs.r.set(RECONCILED_KEY, "1", nx=once, ex=60) and once:
        return None
    found = reconcile(jobs, folders, grace_s=RECONCILE_GRACE_S)
    disagree = found.folders_without_record or found.waiting_without_folder or found.running
    logger.log(
        logging.WARNING if disagree else logging.INFO,
        "reconciliation at start: %s",
        found.summary(ttl_s),
    )
    return found
