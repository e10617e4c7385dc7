"""The workers' CPU priority: below the API's on a machine they share (``SAGD_WORKER_NICENESS``).

Restorations are CPU-bound for milliseconds to minutes; accepting an upload takes about 2 ms. At
the same priority a running restoration takes a full share of a core from a burst of uploads;
nice, it still gets every cycle the API leaves idle. ``docs/BENCHMARKS.md`` has the measured
difference.
"""

from __future__ import annotations

import os


def lower_priority(niceness: int) -> int:
    """Make this process at least ``niceness`` nice: an absolute level, not an increment, so a
    worker started already nicer is left as it is. Children forked afterwards (the Celery pool)
    inherit it. Returns the niceness now in effect."""
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    return os.getpriority(os.PRIO_PROCESS, 0)
