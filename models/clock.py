"""The one clock that every "now" in labq asks: loader, frozen window, due times, reports, runs.

Production reads wall time. Tests and the simulation make a :class:`ManualClock` the process clock
with :func:`use` and move it themselves, so a working day passes in a second and a run replays
(docs/architecture.md §7.9, "Time").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class WallClock:
    """Wall time in UTC: the production clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (tests, the simulation); safe to read from threads."""

    def __init__(self, start: datetime) -> None:
        self._at = _aware(start)
        self._lock = Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        at = _aware(at)
        with self._lock:
            self._at = at

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._at += delta
            return self._at


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: the clock keeps only timezone-aware instants")
    return at.astimezone(UTC)


_current: Clock = WallClock()


def now() -> datetime:
    """The process clock's current instant."""
    return _current.now()


def current() -> Clock:
    return _current


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the process clock for the block (the previous one comes back after it)."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous
