"""Stopping a solve from outside (a cancelled run): every phase looks at the stop event."""

from __future__ import annotations

import threading

import pytest

from scheduler.core.dispatch import best_dispatch
from scheduler.core.lns import SearchSettings, improve
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.stopping import SolveStopped
from scheduler.generate import generate_lab


def test_a_stop_during_the_solve_ends_it_without_a_plan() -> None:
    snapshot = generate_lab("small", 1)
    stop = threading.Event()
    seen: list[float] = []

    def progress(fraction: float, objective: int) -> None:
        seen.append(fraction)
        stop.set()  # the cancel arrives once the first plan is known

    with pytest.raises(SolveStopped):
        solve(snapshot, SolveConfig(time_limit=60, workers=2), progress=progress, stop=stop)
    assert len(seen) == 1  # no phase after the stop reported anything


@pytest.mark.parametrize("workers", [1, 2])
def test_the_neighbourhood_search_starts_nothing_once_stopped(workers: int) -> None:
    snapshot = generate_lab("small", 2)
    _, plan = best_dispatch(snapshot)
    placements = {j.id: None for j in snapshot.jobs} | {a.job: a for a in plan.assignments}
    stop = threading.Event()
    stop.set()
    assert plan.objective is not None
    out = improve(
        snapshot,
        placements,
        plan.objective,
        SearchSettings(time_limit=60, workers=workers),
        stop=stop,
    )
    assert out.iterations == 0 and out.objective == plan.objective
