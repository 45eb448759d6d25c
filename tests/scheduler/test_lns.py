"""Large-neighbourhood search keeps every plan valid and never makes it worse."""

from __future__ import annotations

import pytest

from scheduler.core.cpsat import build_model
from scheduler.core.cpsat.context import FixedContext
from scheduler.core.dispatch import best_dispatch
from scheduler.core.explain import kept_placements
from scheduler.core.lns import SearchSettings, _Search, improve
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


def _search(snap: Snapshot, **settings: object) -> _Search:
    placements, objective = start(snap)
    return _Search(
        snap,
        placements,
        objective,
        frozenset(kept_placements(snap)),
        SearchSettings(time_limit=1.0, workers=1, **settings),  # type: ignore[arg-type]
        None,
        None,
    )


def test_the_bottleneck_neighbourhood_frees_work_of_the_resource_with_most_late_work() -> None:
    snap = generate_lab("small", 2)
    search = _search(snap, seed=5)
    late = search._late_work()
    worst = sorted(late, key=lambda r: (-late[r], r))[:3]
    index = search.index

    def users(resource: str) -> set[str]:
        """Jobs held by the resource, or that could use it."""
        return set(search._held_by(resource)) | {
            j
            for j in index.movable
            if resource in index.resources.get(j, []) or resource[2:] in index.jobs[j].pools
        }

    for _ in range(5):
        hood = search._bottleneck(40)
        assert 0 < len(hood.free) <= 40
        # every freed job is held by one of the worst resources or could use it
        assert any(set(hood.free) <= users(r) for r in worst)


def test_the_urgent_neighbourhood_frees_the_chain_of_a_late_high_weight_case() -> None:
    snap = generate_lab("small", 2)
    search = _search(snap, seed=5)
    base = search.base
    late = sorted(
        ((snap.jobs_by_id[j].weight, base.tardiness[j], j) for j in search.index.movable),
        reverse=True,
    )
    top_cases = {snap.jobs_by_id[j].case for w, t, j in late[: max(5, len(late) // 10)] if t}
    hood = search._urgent(60)
    free = set(hood.free)
    whole = [c for c in top_cases if set(search.index.by_case[c]) <= free]
    assert whole  # at least one late urgent case is freed with its whole chain


@pytest.mark.parametrize("kind", ["bottleneck", "urgent"])
def test_a_search_of_one_new_kind_improves_and_every_plan_is_valid(
    kind: str, work_clock_only: None
) -> None:
    snap = generate_lab("small", 2)
    placements, objective = start(snap)
    out = improve(
        snap,
        placements,
        objective,
        SearchSettings(time_limit=3.0, workers=1, seed=1, kinds=(kind,)),
        locked=frozenset(kept_placements(snap)),
    )
    plan = as_plan(out.placements)
    assert verify(snap, plan) == []
    assert out.objective == plan_objective(snap, plan.assignments)[0]
    assert set(out.by_kind) == {kind}
    assert out.objective < objective
