"""Cheap moves between neighbourhood solves: a few jobs placed again by the dispatch rules
(``dispatch.redispatch``, ``lns._Search._moves``) keep every plan valid, repeat with one worker,
and find the swap a late heavy job needs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import random_snapshots
from tiny_labs import examiner, job, lab

from scheduler.core.dispatch import POLICIES, dispatch, redispatch
from scheduler.core.explain import kept_placements
from scheduler.core.lns import SearchOutcome, SearchSettings, _Index, _Search, improve
from scheduler.core.objective import plan_objective
from scheduler.core.plan import Assignment, Plan, Unscheduled
from scheduler.core.rules.names import KEPT
from scheduler.core.snapshot import Snapshot
from scheduler.core.verify import verify
from scheduler.generate import generate_lab

Placements = dict[str, Assignment | None]


def placements_of(snapshot: Snapshot, plan: Plan) -> Placements:
    placements: Placements = {j.id: None for j in snapshot.jobs}
    for a in plan.assignments:
        placements[a.job] = a
    return placements


def with_moves(plan: Plan, moved: Placements) -> Plan:
    """``plan`` with ``moved`` applied; a job newly left out is ``horizon_full``."""
    kept = {a.job: a for a in plan.assignments if a.job not in moved}
    kept.update({j: a for j, a in moved.items() if a is not None})
    left = [u for u in plan.unscheduled if u.job not in moved]
    left += [Unscheduled(j, "horizon_full", "moved out") for j, a in moved.items() if a is None]
    return Plan("feasible", None, None, 0.0, tuple(kept.values()), tuple(left))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots(), st.sampled_from(POLICIES), st.data(), st.booleans())
def test_every_plan_a_move_makes_passes_the_verifier(
    snapshot: Snapshot, policy: str, data: st.DataObject, leave_out: bool
) -> None:
    plan = dispatch(snapshot, policy)
    locked = frozenset(kept_placements(snapshot))
    index = _Index(snapshot, locked)
    if not index.movable:
        return
    chosen = data.draw(st.lists(st.sampled_from(index.movable), min_size=1, max_size=4))
    order = sorted(set(chosen), key=lambda j: index.rank[j])
    if data.draw(st.booleans()):  # a swap: the later job first
        order.reverse()
    moved = redispatch(snapshot, placements_of(snapshot, plan), order, leave_out=leave_out)
    if moved is None:
        return
    assert set(moved) == set(order)
    # as the search judges a merged plan: kept placements are the locked jobs' own affair
    assert [v for v in verify(snapshot, with_moves(plan, moved)) if v.rule not in KEPT] == []


def late_heavy_job() -> Snapshot:
    """One examiner; a light job placed first holds the slot a heavy job due at 60 needs."""
    return lab(
        [examiner("e1", available=((0, 480),))],
        [
            job("light", weight=1, due=300, attended=60),
            job("heavy", weight=100, due=60, attended=60, release=0),
        ],
    )


def first_light(snapshot: Snapshot) -> Placements:
    return {
        "light": Assignment("light", "e1", None, 0, 60),
        "heavy": Assignment("heavy", "e1", None, 60, 120),
    }


def test_a_swap_on_the_bottleneck_provably_improves_the_plan() -> None:
    snap = late_heavy_job()
    placements = first_light(snap)
    before, _ = plan_objective(snap, [a for a in placements.values() if a is not None])
    assert before == 100 * 60
    moved = redispatch(snap, placements, ["heavy", "light"])
    assert moved == {
        "heavy": Assignment("heavy", "e1", None, 0, 60),
        "light": Assignment("light", "e1", None, 60, 120),
    }
    after, _ = plan_objective(snap, [a for a in moved.values() if a is not None])
    assert after == 0
    # moving the light job alone finds it no earlier place: nothing changes
    assert redispatch(snap, placements, ["light"]) == {"light": placements["light"]}


def test_the_search_keeps_a_move_that_lowers_the_objective() -> None:
    snap = late_heavy_job()
    placements = first_light(snap)
    search = _Search(
        snap,
        placements,
        6000,
        frozenset(),
        SearchSettings(time_limit=1.0, workers=1, moves=0.5),
        None,
        None,
    )
    search.estimated = 0.5  # the clock has run: moves get their share of it
    outcome = SearchOutcome(search.placements, search.objective)
    search._moves(outcome)
    tried, accepted, gained, _, spent = outcome.moves
    assert tried >= 1 and accepted == 1 and gained == 6000
    assert search.objective == 0
    assert search.placements["heavy"] == Assignment("heavy", "e1", None, 0, 60)
    assert [v for _, v in outcome.history] == [0]
    assert spent > 0


def test_moves_repeat_with_one_worker(work_clock_only: None) -> None:
    snap = generate_lab("small", 2)
    plan = dispatch(snap, "priority")
    assert plan.objective is not None
    settings_ = SearchSettings(time_limit=2.0, workers=1, seed=2, moves=0.1)
    runs = [
        improve(
            snap,
            placements_of(snap, plan),
            plan.objective,
            settings_,
            locked=frozenset(kept_placements(snap)),
        )
        for _ in range(2)
    ]
    first, second = runs
    assert first.moves[0] > 0  # moves were tried
    assert first.placements == second.placements
    assert first.history == second.history
    assert first.moves[:3] == second.moves[:3]
    final = Plan(
        "feasible",
        None,
        None,
        0.0,
        tuple(a for a in first.placements.values() if a is not None),
        tuple(
            Unscheduled(j, "horizon_full", "x") for j, a in first.placements.items() if a is None
        ),
    )
    assert [v for v in verify(snap, final) if v.rule not in KEPT] == []
    assert first.objective == plan_objective(snap, final.assignments)[0]


def test_a_job_moved_out_of_its_slot_still_ends_before_its_successor_starts() -> None:
    """The heavy job takes the predecessor's slot; the predecessor's next room on its examiner
    would end after its held successor starts, so the move is refused, left out or not."""
    snap = lab(
        [examiner("e1"), examiner("e2", skills=("computer",))],
        [
            job("pred", weight=1, due=480),
            job("succ", weight=1, due=480, skills=("computer",), after=("pred",)),
            job("heavy", weight=100, due=60),
        ],
    )
    placements: Placements = {
        "pred": Assignment("pred", "e1", None, 0, 60),
        "succ": Assignment("succ", "e2", None, 60, 120),
        "heavy": Assignment("heavy", "e1", None, 60, 120),
    }
    for leave_out in (False, True):
        assert redispatch(snap, placements, ["heavy", "pred"], leave_out=leave_out) is None
    # with the successor moving too, it follows the predecessor
    moved = redispatch(snap, placements, ["heavy", "pred", "succ"])
    assert moved == {
        "heavy": Assignment("heavy", "e1", None, 0, 60),
        "pred": Assignment("pred", "e1", None, 60, 120),
        "succ": Assignment("succ", "e2", None, 120, 180),
    }
