"""solve(): the pipeline around the optimizer — baselines, fallback, progress, determinism."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import random_snapshots
from tiny_labs import coupled_chains, examiner, job, lab, shifts

import scheduler.core.solve as solve_module
from scheduler.core.bounds import lower_bound
from scheduler.core.dispatch import best_dispatch, dispatch
from scheduler.core.lp_bound import lp_bound
from scheduler.core.objective import plan_objective
from scheduler.core.plan import FEASIBLE, INFEASIBLE, OPTIMAL, Assignment, Plan
from scheduler.core.snapshot import PreviousAssignment, Snapshot, load_snapshot
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.verify import verify
from scheduler.generate import generate_lab


def check(snapshot: Snapshot, plan: Plan) -> None:
    assert verify(snapshot, plan) == []
    assert plan.objective == plan_objective(snapshot, plan.assignments)[0]
    assert plan.bound is not None and plan.bound <= plan.objective
    listed = [a.job for a in plan.assignments] + [u.job for u in plan.unscheduled]
    assert sorted(listed) == sorted(j.id for j in snapshot.jobs)
    assert all(u.detail for u in plan.unscheduled)


def test_a_dispatch_policy_returns_that_baseline() -> None:
    snap = lab([examiner("e1")], [job("j1", due=0), job("j2", case="b", weight=5, due=0)])
    plan = solve(snap, SolveConfig(policy="fifo"))
    check(snap, plan)
    assert plan.status == FEASIBLE
    assert plan.assignments == dispatch(snap, "fifo").assignments


def test_unknown_policy_is_refused() -> None:
    snap = lab([examiner("e1")], [job("j1")])
    with pytest.raises(ValueError, match="policy"):
        solve(snap, SolveConfig(policy="random"))


def test_small_lab_is_solved_to_optimality_and_beats_fifo() -> None:
    snap = lab(
        [examiner("e1")],
        [
            job("j1", case="a", weight=1, due=0, attended=120),
            job("j2", case="b", weight=10, due=0, attended=60),
            job("j3", case="c", weight=5, due=0, attended=30),
        ],
    )
    plan = solve(snap, SolveConfig(time_limit=5, workers=1))
    check(snap, plan)
    assert plan.status == OPTIMAL
    # Weighted shortest processing time: j3 (5/30), j2 (10/60), j1 (1/120).
    assert plan.objective == 5 * 30 + 10 * 90 + 1 * 210
    assert plan.objective <= (dispatch(snap, "fifo").objective or 0)


def test_progress_is_reported_from_start_to_end() -> None:
    seen: list[tuple[float, int]] = []
    snap = lab([examiner("e1")], [job("j1", due=0), job("j2", case="b", due=0)])
    plan = solve(
        snap, SolveConfig(time_limit=2, workers=1), progress=lambda f, v: seen.append((f, v))
    )
    assert seen and seen[-1] == (1.0, plan.objective)
    assert all(0.0 <= f <= 1.0 for f, _ in seen)
    assert [v for _, v in seen] == sorted((v for _, v in seen), reverse=True)


def test_an_invalid_optimized_plan_falls_back_to_the_baseline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    snap = lab([examiner("e1")], [job("j1", due=0), job("j2", case="b", due=0)])

    def broken(*args: object, **kwargs: object) -> dict[str, Assignment | None]:
        # Both jobs on the same examiner at the same time: the verifier must catch it.
        return {
            "j1": Assignment("j1", "e1", None, 0, 60),
            "j2": Assignment("j2", "e1", None, 0, 60),
        }

    monkeypatch.setattr(solve_module, "read_solution", broken)
    monkeypatch.setattr(solve_module, "_full_model", lambda *a, **k: (broken(), -1, True, 0))
    plan = solve(snap, SolveConfig(time_limit=2, workers=1))
    check(snap, plan)
    assert plan.assignments == dispatch(snap, "priority").assignments


def test_pin_conflict_status_is_infeasible_but_the_plan_is_valid() -> None:
    snap = lab(
        [examiner("e1")],
        [
            job("j1", case="a", due=0, pin=("e1", None, 0)),
            job("j2", case="b", due=0, pin=("e1", None, 30)),
            job("j3", case="c", due=0),
        ],
    )
    plan = solve(snap, SolveConfig(time_limit=2, workers=1))
    check(snap, plan)
    assert plan.status == INFEASIBLE
    assert any(a.job == "j3" for a in plan.assignments)


def test_generated_lab_is_improved_and_deterministic_with_one_worker(work_clock_only: None) -> None:
    snap = generate_lab("small", 3)
    config = SolveConfig(time_limit=2, workers=1, seed=7)
    first = solve(snap, config)
    second = solve(snap, config)
    check(snap, first)
    assert first.assignments == second.assignments
    assert first.objective == second.objective
    baseline = min(dispatch(snap, p).objective or 0 for p in ("fifo", "priority", "wsjf"))
    assert first.objective is not None and first.objective <= baseline
    assert first.forecast  # a generated lab has a backlog beyond the horizon


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_snapshots())
def test_every_solved_random_lab_passes_the_verifier(snapshot: Snapshot) -> None:
    plan = solve(snapshot, SolveConfig(time_limit=1, workers=1))
    check(snapshot, plan)


GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    "name", sorted(p.name.removesuffix(".snapshot.json") for p in GOLDEN.glob("*.snapshot.json"))
)
def test_golden_snapshots_replay_to_the_recorded_result(name: str, work_clock_only: None) -> None:
    """Snapshots that once mattered, replayed: same status, objective, terms and reasons."""
    snapshot = load_snapshot(GOLDEN / f"{name}.snapshot.json")
    expected = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    plan = solve(snapshot, SolveConfig(time_limit=5, workers=1))
    check(snapshot, plan)
    assert plan.status == expected["status"]
    assert plan.objective == expected["objective"]
    assert dict(plan.terms) == expected["terms"]
    assert {u.job: u.reason for u in plan.unscheduled} == expected["unscheduled"]


def test_a_rerun_starts_from_the_published_schedule(work_clock_only: None) -> None:
    """Re-solving with the last plan published keeps it unless a change pays for itself."""
    snap = generate_lab("small", 6)
    first = solve(snap, SolveConfig(time_limit=1, workers=1))
    published = tuple(
        PreviousAssignment(a.job, a.examiner, a.workstation, a.start) for a in first.assignments
    )
    rerun = replace(snap, previous=published, frozen_until=0)
    plan = solve(rerun, SolveConfig(time_limit=1, workers=1))
    check(rerun, plan)
    kept = plan_objective(rerun, first.assignments)[0]
    assert plan.objective is not None and plan.objective <= kept
    assert plan.terms["change"] <= len(published) // 20


def test_a_held_placement_that_no_longer_works_is_rescheduled_not_left_out() -> None:
    """The warm start holds the published schedule; a published job that can no longer stay
    where it was (its device arrives later now) is dispatched again with its successor, and
    everything else stays exactly where it was published."""
    people = [examiner("e1", available=shifts(5)), examiner("e2", available=shifts(5))]
    published = [
        PreviousAssignment("a", "e1", None, 0),
        PreviousAssignment("b", "e1", None, 60),
        PreviousAssignment("c", "e2", None, 0),
        PreviousAssignment("d", "e2", None, 60),
    ]
    jobs = [
        job("a", release=120, due=60),  # published at 0; now released at 120
        job("b", after=["a"], due=120),
        job("c", case="c2", due=600),
        job("d", case="c2", due=600),
    ]
    rerun = lab(people, jobs, previous=published)
    policy, base = best_dispatch(rerun)
    start = solve_module._published_start(rerun, policy, replace(base, objective=10**15))
    assert start is not None
    # The warm start lists only pin conflicts; reasons for the rest are added later.
    assert [v for v in verify(rerun, start) if v.rule != "coverage"] == []
    placed = {a.job: (a.examiner, a.start) for a in start.assignments}
    assert placed["c"] == ("e2", 0) and placed["d"] == ("e2", 60)
    assert placed["a"][1] >= 120 and placed["b"][1] >= placed["a"][1] + 60


def test_a_warm_start_never_keeps_the_published_schedule_at_urgent_work_s_cost() -> None:
    """However much dearer the baseline may be, the warm start that holds every published
    placement is not taken when it leaves new heavy work later than the baseline does by more
    than the changes it saves: here the new P1-weight job would wait behind the published light
    work, and the baseline makes room for it by moving that work later the same day (no change
    counted)."""
    people = [examiner("e1", available=shifts(5, end=600))]
    published = [PreviousAssignment("l1", "e1", None, 0), PreviousAssignment("l2", "e1", None, 240)]
    jobs = [
        job("l1", case="light", weight=10, attended=240, due=5 * 1440),
        job("l2", case="light", weight=10, attended=240, due=5 * 1440),
        job("h", case="urgent", weight=1000, attended=60, due=60),  # new since publication
    ]
    rerun = lab(people, jobs, previous=published)
    policy, base = best_dispatch(rerun)
    held = solve_module._held_start(rerun, policy, None)
    assert {a.job: a.start for a in held.assignments}["h"] == 480  # behind the light work
    start = solve_module._published_start(rerun, policy, replace(base, objective=10**15))
    assert start is not None and not verify(rerun, start)
    placed = {a.job: (a.examiner, a.start) for a in start.assignments}
    assert placed["h"] == ("e1", 0)  # on time
    assert placed["l2"] == ("e1", 240)  # published work that still fits beside it stays


def test_a_lab_of_a_few_hundred_jobs_reports_the_lp_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a proof from the full model, the reported bound is the LP's where it is cheap
    enough, and the fast relaxation's otherwise."""
    snap = coupled_chains()
    monkeypatch.setattr(solve_module, "FULL_MODEL_MAX_JOBS", 0)  # no optimality proof
    with_lp = solve(snap, SolveConfig(time_limit=2, workers=1))
    check(snap, with_lp)
    lp = lp_bound(snap)
    assert lp is not None and lp > lower_bound(snap)
    assert with_lp.objective is not None
    assert with_lp.bound == min(lp, with_lp.objective)
    monkeypatch.setattr(solve_module, "LP_BOUND_MAX_JOBS", 0)
    without = solve(snap, SolveConfig(time_limit=2, workers=1))
    check(snap, without)
    assert without.bound == lower_bound(snap) == 4545


def test_the_lp_bound_is_reported_with_one_worker_and_with_two(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With one worker the LP runs on a thread beside the search, with two before it: the same
    bound either way, and the one-worker plan is the same whether the LP runs or not (the
    search never reads it)."""
    snap = coupled_chains()
    monkeypatch.setattr(solve_module, "FULL_MODEL_MAX_JOBS", 0)  # no optimality proof
    lp = lp_bound(snap)
    assert lp is not None and lp > lower_bound(snap)
    one = solve(snap, SolveConfig(time_limit=2, workers=1))
    two = solve(snap, SolveConfig(time_limit=2, workers=2))
    for plan in (one, two):
        check(snap, plan)
        assert plan.objective is not None
        assert plan.bound == min(lp, plan.objective)
    monkeypatch.setattr(solve_module, "LP_BOUND_MAX_JOBS", 0)
    alone = solve(snap, SolveConfig(time_limit=2, workers=1))
    assert alone.assignments == one.assignments
