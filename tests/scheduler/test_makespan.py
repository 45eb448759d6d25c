"""The makespan search: exact optimum on a tiny flexible job shop, valid plans, determinism."""

from __future__ import annotations

from scheduler.benchmarks.shop import shop_snapshot
from scheduler.core.dispatch import best_dispatch
from scheduler.core.makespan import search
from scheduler.core.plan import FEASIBLE, OPTIMAL, Assignment, Plan
from scheduler.core.snapshot import Snapshot
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.verify import verify

# Four jobs of three operations on three machines (machine index, time). Optimum 12, above both
# the longest chain (9) and the machine load (33 / 3 = 11), checked with a textbook CP-SAT model.
SHOP = [
    [[(0, 3), (1, 5)], [(1, 2)], [(2, 4), (0, 6)]],
    [[(1, 4)], [(0, 3), (2, 3)], [(1, 2)]],
    [[(2, 2), (0, 4)], [(1, 3)], [(0, 2), (2, 1)]],
    [[(0, 2), (2, 3)], [(2, 4), (1, 4)], [(0, 3)]],
]
OPTIMUM = 12


def _shop() -> Snapshot:
    return shop_snapshot("tiny", 3, SHOP)


def _serial(snapshot: Snapshot) -> dict[str, Assignment | None]:
    """A poor but valid warm start: every operation after the previous one, on its first machine."""
    out: dict[str, Assignment | None] = {}
    t = 0
    for job in snapshot.jobs:
        machine, length = next(iter(job.machine_by_workstation.items()))
        out[job.id] = Assignment(job.id, None, machine, t, t + length)
        t += length
    return out


def _plan(placements: dict[str, Assignment | None]) -> Plan:
    return Plan(FEASIBLE, None, None, 0.0, tuple(a for a in placements.values() if a is not None))


def test_solve_reaches_the_optimum_and_proves_it() -> None:
    snapshot = _shop()
    plan = solve(snapshot, SolveConfig(time_limit=5, workers=1))
    assert verify(snapshot, plan) == []
    assert plan.objective == OPTIMUM
    assert plan.status == OPTIMAL and plan.bound == OPTIMUM


def test_neighbourhoods_alone_reach_the_optimum_from_a_poor_start() -> None:
    snapshot = _shop()
    start = _serial(snapshot)
    assert verify(snapshot, _plan(start)) == []
    free = [j.id for j in snapshot.jobs]
    outcome = search(snapshot, free, start, budget=2, workers=1, seed=3, full_model_share=0)
    assert outcome is not None
    assert outcome.objective == OPTIMUM
    assert outcome.neighbourhoods > 0
    assert verify(snapshot, _plan(outcome.placements)) == []


def test_one_worker_with_a_fixed_seed_gives_a_fixed_plan() -> None:
    snapshot = _shop()
    _, base = best_dispatch(snapshot)
    start: dict[str, Assignment | None] = {a.job: a for a in base.assignments}
    free = [j.id for j in snapshot.jobs]
    runs = [
        search(snapshot, free, start, budget=1, workers=1, seed=7, full_model_share=0)
        for _ in range(2)
    ]
    first, second = runs
    assert first is not None and second is not None
    assert first.placements == second.placements
    assert first.neighbourhoods == second.neighbourhoods
