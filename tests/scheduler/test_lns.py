"""Large-neighbourhood search keeps every plan valid and never makes it worse."""

from __future__ import annotations

from scheduler.core.cpsat import build_model
from scheduler.core.cpsat.context import FixedContext
from scheduler.core.dispatch import best_dispatch
from scheduler.core.explain import kept_placements
from scheduler.core.lns import SearchSettings, improve
from scheduler.core.objective import plan_objective
from scheduler.core.plan import Assignment, Plan, Unscheduled
from scheduler.core.snapshot import Snapshot
from scheduler.core.verify import verify
from scheduler.generate import generate_lab


def start(snapshot: Snapshot) -> tuple[dict[str, Assignment | None], int]:
    _, plan = best_dispatch(snapshot)
    placements: dict[str, Assignment | None] = {j.id: None for j in snapshot.jobs}
    for a in plan.assignments:
        placements[a.job] = a
    assert plan.objective is not None
    return placements, plan.objective


def as_plan(placements: dict[str, Assignment | None]) -> Plan:
    assignments = tuple(a for a in placements.values() if a is not None)
    left = tuple(Unscheduled(j, "horizon_full", "x") for j, a in placements.items() if a is None)
    return Plan("feasible", None, None, 0.0, assignments, left)


def test_search_improves_a_generated_lab_and_stays_valid() -> None:
    snap = generate_lab("small", 2)
    placements, objective = start(snap)
    progress: list[int] = []
    out = improve(
        snap,
        placements,
        objective,
        SearchSettings(time_limit=1.5, workers=1, seed=1),
        locked=frozenset(kept_placements(snap)),
        progress=lambda f, v: progress.append(v),
    )
    plan = as_plan(out.placements)
    assert verify(snap, plan) == []
    # The search's own figure is the plan's exact objective.
    assert out.objective == plan_objective(snap, plan.assignments)[0]
    assert out.objective < objective
    assert out.improvements == len(progress) > 0
    for job_id in kept_placements(snap):
        assert out.placements[job_id] == placements[job_id]


def test_one_worker_and_a_seed_give_the_same_plan(work_clock_only: None) -> None:
    snap = generate_lab("small", 4)
    placements, objective = start(snap)
    settings = SearchSettings(time_limit=1.0, workers=1, seed=3)
    first = improve(snap, placements, objective, settings)
    second = improve(snap, placements, objective, settings)
    assert first.placements == second.placements
    assert first.iterations == second.iterations
    assert verify(snap, as_plan(first.placements)) == []


def test_a_model_on_the_plans_fixed_context_is_the_model_built_afresh() -> None:
    """A neighbourhood model built on the incumbent's kept-up-to-date counts (FixedContext)
    has exactly the terms, objective and size of one that recounts the fixed jobs."""
    snap = generate_lab("small", 2)
    placements, _ = start(snap)
    base = FixedContext(snap, placements)
    placed = sorted(j for j, a in placements.items() if a is not None)
    # the plan changes under the context: some jobs left out, as an accepted solution would
    changes: dict[str, Assignment | None] = dict.fromkeys(placed[::7], None)
    placements.update(changes)
    base.update(changes)
    ids = [j.id for j in snap.jobs]
    for free in (ids[:60], ids[100:180], placed[::5], [j for j in ids if j in changes]):
        fixed = {j: a for j, a in placements.items() if j not in set(free)}
        afresh = build_model(snap, free, fixed)
        on_base = build_model(snap, free, placements, base=base)
        assert {k: t.constant for k, t in afresh.terms.items()} == {
            k: t.constant for k, t in on_base.terms.items()
        }
        assert afresh.objective_constant == on_base.objective_constant
        assert str(afresh.model.proto.objective) == str(on_base.model.proto.objective)
        assert len(afresh.model.proto.variables) == len(on_base.model.proto.variables)
        assert len(afresh.model.proto.constraints) == len(on_base.model.proto.constraints)
