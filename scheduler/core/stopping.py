"""Stopping a solve from outside: a cancelled run's solve ends within a fraction of a second.

The caller hands `scheduler.core.solve.solve` a ``threading.Event``. Every CP-SAT search that
may run for long is done `under` it (setting the event calls CP-SAT's ``StopSearch``), and the
search loops check `is_set` between their short steps; once the phases have ended, ``solve``
raises `SolveStopped` instead of finishing a plan nobody wants.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ortools.sat.python import cp_model

WATCH_SECONDS = 0.05
"""How often a running CP-SAT search looks at the stop event."""


class SolveStopped(Exception):
    """The solve was stopped from outside before it finished; it has no plan."""


def is_set(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def check(stop: threading.Event | None) -> None:
    """Raise `SolveStopped` if ``stop`` is set."""
    if is_set(stop):
        raise SolveStopped("the solve was stopped")


@contextmanager
def under(stop: threading.Event | None, solver: cp_model.CpSolver) -> Iterator[None]:
    """Run the block's ``solver.solve`` so that setting ``stop`` ends the search promptly."""
    if stop is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        # Asked again at every look: a stop that came before the search began is not lost.
        while not done.wait(WATCH_SECONDS):
            if stop.is_set():
                solver.stop_search()

    watcher = threading.Thread(target=watch, name="cp-sat-stop-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
