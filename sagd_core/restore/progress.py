"""Counting restoration work for the caller's ``progress(done, total)`` callback.

The total is known before any work starts (every plan is built first), so a progress bar never
jumps backwards. Whatever the callback raises propagates unchanged: that is how callers cancel.

A callback may also watch each sampler step (:class:`StepWatchingProgress`: the learned methods'
previews, :mod:`sagd_core.restore.previews`); the methods pass it on like any other callback, so
they need not know about previews.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the samplers (torch) are only needed by the learned methods
    from sagd_core.samplers.common import StepInfo

ProgressFn = Callable[[int, int], None]


class StepWatcher(Protocol):
    def on_step(self, info: StepInfo) -> None: ...


class StepWatchingProgress:
    """A ``progress(done, total)`` callback (``callback``, may be None) that also shows every
    sampler step to ``watcher`` (after counting it: a cancel raised by ``callback`` comes
    first)."""

    def __init__(self, callback: ProgressFn | None, watcher: StepWatcher) -> None:
        self.callback = callback
        self.watcher = watcher

    def __call__(self, done: int, total: int) -> None:
        if self.callback is not None:
            self.callback(done, total)


class Progress:
    """``done`` out of ``total`` units of work (one unit = one network evaluation step)."""

    def __init__(self, total: int, callback: ProgressFn | None) -> None:
        self.total = max(int(total), 1)
        self.done = 0
        self._callback = callback
        self._watcher = callback.watcher if isinstance(callback, StepWatchingProgress) else None

    def advance(self, units: int = 1) -> None:
        self.done = min(self.done + units, self.total)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def on_step(self, info: StepInfo) -> None:
        """A sampler ``callback``: one unit per sampler step (shown to the watcher, if any)."""
        self.advance()
        if self._watcher is not None:
            self._watcher.on_step(info)

    def finish(self) -> None:
        if self.done < self.total:
            self.advance(self.total - self.done)


__all__ = ["Progress", "ProgressFn", "StepWatcher", "StepWatchingProgress"]
