"""Counting restoration work for the caller's ``progress(done, total)`` callback.

The total is known before any work starts (every plan is built first), so a progress bar never
jumps backwards. Whatever the callback raises propagates unchanged: that is how callers cancel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the samplers (torch) are only needed by the learned methods
    from sagd_core.samplers.common import StepInfo

ProgressFn = Callable[[int, int], None]


class Progress:
    """``done`` out of ``total`` units of work (one unit = one network evaluation step)."""

    def __init__(self, total: int, callback: ProgressFn | None) -> None:
        self.total = max(int(total), 1)
        self.done = 0
        self._callback = callback

    def advance(self, units: int = 1) -> None:
        self.done = min(self.done + units, self.total)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def on_step(self, info: StepInfo) -> None:
        """A sampler ``callback``: one unit per sampler step."""
        del info
        self.advance()

    def finish(self) -> None:
        if self.done < self.total:
            self.advance(self.total - self.done)


__all__ = ["Progress", "ProgressFn"]
