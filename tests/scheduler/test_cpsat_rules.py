"""One rule at a time on two- or three-job labs: the optimum is known by hand.

Every test solves twice — the bare CP-SAT model (all free jobs in one model) and ``solve()`` — and
checks the exact objective, the status, that the plan passes the verifier, and that the model's
own term values equal ``objective.objective_terms`` on its plan.
"""

from __future__ import annotations

from ortools.sat.python import cp_model
from tiny_labs import DAY, WEEK, examiner, job, lab, workstation

from scheduler.core.cpsat import add_hint, build_model, read_solution, term_values
from scheduler.core.explain import kept_placements
from scheduler.core.objective import objective_terms, weighted_objective
from scheduler.core.plan import (
    INFEASIBLE,
    NO_ELIGIBLE_EXAMINER,
    OPTIMAL,
    PIN_CONFLICT,
    PREDECESSOR_UNSCHEDULED,
    Assignment,
    Plan,
)
from scheduler.core.snapshot import Pool, PreviousAssignment, Snapshot, Weights
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.verify import verify

H = 2 * WEEK  # the default horizon of tiny_labs.lab


def model_optimum(snapshot: Snapshot) -> tuple[int, dict[str, Assignment]]:
    """Solve the whole snapshot as one CP-SAT model; check terms against objective.py."""
    jobs = {j.id: j for j in snapshot.jobs}
    fixed: dict[str, Assignment | None] = {
        k.job: Assignment(
            k.job,
            k.examiner,
            k.workstation,
            k.start,
            k.start + jobs[k.job].duration_on(k.workstation),
        )
        for k in kept_placements(snapshot).values()
    }
    free = [j.id for j in snapshot.jobs if j.id not in fixed]
    ctx = build_model(snapshot, free, fixed)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 10
    assert solver.solve(ctx.model) == cp_model.OPTIMAL
    placed = {**fixed, **read_solution(ctx, solver)}
    assignments = {j: a for j, a in placed.items() if a is not None}
    terms = objective_terms(snapshot, assignments.values())
    assert term_values(ctx, solver) == terms
    assert round(solver.objective_value) == weighted_objective(snapshot, terms)
    return round(solver.objective_value), assignments


def solved(snapshot: Snapshot, expected: int, status: str = OPTIMAL) -> Plan:
    """solve() finds ``expected`` with ``status``, agreeing with the bare model."""
    plan = solve(snapshot, SolveConfig(time_limit=5, workers=1))
    assert verify(snapshot, plan) == []
    assert plan.status == status
    assert plan.objective == expected
    assert plan.objective == weighted_objective(
        snapshot, objective_terms(snapshot, plan.assignments)
    )
    if status == OPTIMAL:
        assert plan.bound == expected  # a proven optimum closes the gap
        assert model_optimum(snapshot)[0] == expected
    return plan


def where(plan: Plan, job_id: str) -> Assignment:
    return next(a for a in plan.assignments if a.job == job_id)


def reason(plan: Plan, job_id: str) -> str:
    return next(u.reason for u in plan.unscheduled if u.job == job_id)


# -- rule 1: skills, allow-list, capabilities, machine_by_workstation -----------------------------


def test_skills_pick_the_examiner_who_holds_them() -> None:
    snap = lab(
        [examiner("e1", ["mobile"]), examiner("e2", ["review"])],
        [job("j1", skills=["review"], due=60, weight=10)],
    )
    plan = solved(snap, 0)
    assert where(plan, "j1").examiner == "e2"


def test_no_examiner_with_the_skills_leaves_the_job_out_at_the_horizon_charge() -> None:
    snap = lab([examiner("e1", ["mobile"])], [job("j1", skills=["computer"], due=60, weight=10)])
    plan = solved(snap, 10 * (H + 60 - 60))
    assert reason(plan, "j1") == NO_ELIGIBLE_EXAMINER


def test_allow_list_narrows_the_examiner() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2", available=[(DAY, DAY + 480)])],
        [job("j1", examiners=["e2"], due=0)],
    )
    plan = solved(snap, DAY + 60)
    assert where(plan, "j1").examiner == "e2"


def test_machine_by_workstation_picks_the_faster_box() -> None:
    ws = [workstation("w1", ["ufed"]), workstation("w2", ["ufed"])]
    fast = lab(
        [],
        [job("j1", attended=0, machine_by_workstation={"w1": 200, "w2": 100}, due=100, skills=[])],
        ws,
    )
    plan = solved(fast, 0)
    assert (where(plan, "j1").workstation, where(plan, "j1").end) == ("w2", 100)
    slow = lab(
        [], [job("j1", attended=0, machine_by_workstation={"w1": 200}, due=100, skills=[])], ws
    )
    assert where(solved(slow, 100), "j1").workstation == "w1"


def test_capabilities_exclude_a_workstation() -> None:
    ws = [workstation("w1", ["ufed"]), workstation("w2", ["graykey"], available=[(500, H)])]
    snap = lab(
        [], [job("j1", attended=0, machine=100, capabilities=["graykey"], skills=[], due=0)], ws
    )
    plan = solved(snap, 600)
    assert where(plan, "j1").workstation == "w2"


# -- rule 2: examiner windows and no overlap ------------------------------------------------------


def test_attended_part_fits_inside_one_window() -> None:
    two = lab(
        [examiner("e1", available=[(0, 100), (DAY, DAY + 160)])], [job("j1", attended=120, due=0)]
    )
    assert where(solved(two, DAY + 120), "j1").start == DAY
    short = lab(
        [examiner("e1", available=[(0, 100), (DAY, DAY + 60)])], [job("j1", attended=120, due=0)]
    )
    solved(short, H + 120)


def test_touching_windows_are_not_merged() -> None:
    snap = lab(
        [examiner("e1", available=[(0, 60), (60, 120), (DAY, DAY + 480)])],
        [job("j1", attended=90, due=0)],
    )
    assert where(solved(snap, DAY + 90), "j1").start == DAY


def test_examiner_does_one_job_at_a_time() -> None:
    snap = lab(
        [examiner("e1")],
        [job("j1", case="a", weight=3, due=60), job("j2", case="b", weight=1, due=60)],
    )
    plan = solved(snap, 60)
    assert (where(plan, "j1").start, where(plan, "j2").start) == (0, 60)


# -- rule 3: workstation and pool capacity --------------------------------------------------------


def test_workstation_capacity() -> None:
    jobs = [
        job(
            f"j{i}",
            case=f"c{i}",
            attended=0,
            machine=100,
            capabilities=["ufed"],
            skills=[],
            due=100,
        )
        for i in (1, 2)
    ]
    solved(lab([], jobs, [workstation("w1", capacity=1)]), 100)
    solved(lab([], jobs, [workstation("w1", capacity=2)]), 0)


def test_machine_part_only_occupies_the_workstation_for_machine_minutes() -> None:
    jobs = [
        job("j1", case="a", attended=120, machine=30, capabilities=["ufed"], due=120),
        job("j2", case="b", attended=0, machine=30, capabilities=["ufed"], skills=[], due=60),
    ]
    plan = solved(lab([examiner("e1")], jobs, [workstation("w1")]), 0)
    assert where(plan, "j2").start == 30


def test_pool_capacity_is_held_for_the_whole_job() -> None:
    jobs = [
        job("j1", case="a", attended=60, pools=["axiom"], due=60),
        job("j2", case="b", attended=60, pools=["axiom"], due=60),
    ]
    people = [examiner("e1"), examiner("e2")]
    solved(lab(people, jobs, pools=[Pool("axiom", 1)]), 60)
    solved(lab(people, jobs, pools=[Pool("axiom", 2)]), 0)


# -- rule 4: precedence and release --------------------------------------------------------------


def test_successor_starts_after_its_predecessor_ends() -> None:
    snap = lab(
        [examiner("e1"), examiner("e2")],
        [job("j1", case="a", due=None), job("j2", case="b", due=60, after=["j1"])],
    )
    plan = solved(snap, 60)
    assert where(plan, "j2").start >= where(plan, "j1").end


def test_left_out_predecessor_keeps_its_successor_out() -> None:
    snap = lab(
        [examiner("e1")],
        [
            job("j1", case="a", skills=["computer"], due=None),
            job("j2", case="b", due=60, after=["j1"]),
        ],
    )
    plan = solved(snap, H + 60 - 60)
    assert reason(plan, "j2") == PREDECESSOR_UNSCHEDULED


def test_absent_predecessor_is_already_done() -> None:
    snap = lab([examiner("e1")], [job("j2", due=60, after=["gone"])])
    solved(snap, 0)


def test_nothing_starts_before_its_release() -> None:
    snap = lab([examiner("e1")], [job("j1", release=100, due=100)])
    assert where(solved(snap, 60), "j1").start == 100


# -- rule 5: exposure ----------------------------------------------------------------------------


def test_exposure_work_stays_inside_the_exposure_window() -> None:
    jobs = [
        job("j1", case="a", exposure=60, due=0),
        job("j2", case="b", weight=2, due=0),
    ]
    unrestricted = lab([examiner("e1")], jobs)
    solved(unrestricted, 2 * 60 + 120)  # j2 first
    cut_off = lab([examiner("e1", windows=[(0, 100)])], jobs)
    plan = solved(cut_off, 60 + 2 * 120)  # j1 must end by the cut-off
    assert where(plan, "j1").start == 0


def test_daily_exposure_cap_moves_the_second_session_to_the_next_day() -> None:
    shifts = [(0, 480), (DAY, DAY + 480)]
    jobs = [job("j1", case="a", exposure=60, due=0), job("j2", case="b", exposure=60, due=0)]
    capped = lab([examiner("e1", available=shifts, daily_cap=60)], jobs)
    plan = solved(capped, 60 + DAY + 60)
    assert sorted(a.start for a in plan.assignments) == [0, DAY]
    solved(lab([examiner("e1", available=shifts, daily_cap=120)], jobs), 60 + 120)


def test_logged_minutes_count_against_the_daily_cap() -> None:
    shifts = [(0, 480), (DAY, DAY + 480)]
    snap = lab(
        [examiner("e1", available=shifts, daily_cap=120, used_by_day={0: 90})],
        [job("j1", exposure=60, due=0)],
    )
    assert where(solved(snap, DAY + 60), "j1").start == DAY


def test_severe_daily_cap_counts_only_severity_three() -> None:
    shifts = [(0, 480), (DAY, DAY + 480)]
    severe = [job(f"j{i}", case=f"c{i}", exposure=60, severity=3, due=0) for i in (1, 2)]
    solved(lab([examiner("e1", available=shifts, severe_daily_cap=60)], severe), 60 + DAY + 60)
    milder = [job(f"j{i}", case=f"c{i}", exposure=60, severity=2, due=0) for i in (1, 2)]
    solved(lab([examiner("e1", available=shifts, severe_daily_cap=60)], milder), 60 + 120)


def test_weekly_cap_with_minutes_already_used_this_week() -> None:
    shifts = [(0, 480), (WEEK, WEEK + 480)]
    jobs = [job(f"j{i}", case=f"c{i}", exposure=60, due=0) for i in (1, 2)]
    snap = lab([examiner("e1", available=shifts, weekly_cap=120, used_this_week=60)], jobs)
    plan = solved(snap, 60 + WEEK + 60)
    assert sorted(a.start for a in plan.assignments) == [0, WEEK]


def test_max_severity_keeps_opted_out_examiners_away() -> None:
    snap = lab(
        [examiner("e1", max_severity=2), examiner("e2", available=[(DAY, DAY + 480)])],
        [job("j1", exposure=60, severity=3, due=0)],
    )
    assert where(solved(snap, DAY + 60), "j1").examiner == "e2"


# -- rule 6: pins and frozen assignments ----------------------------------------------------------


def test_pinned_job_keeps_examiner_and_start() -> None:
    snap = lab(
        [examiner("e1")],
        [job("j1", case="a", due=0, pin=("e1", None, 120)), job("j2", case="b", due=0)],
    )
    plan = solved(snap, 180 + 60)
    assert where(plan, "j1").start == 120


def test_frozen_previous_assignment_is_kept() -> None:
    snap = lab(
        [examiner("e1")],
        [job("j1", due=0)],
        previous=[PreviousAssignment("j1", "e1", None, 200)],
        frozen_until=DAY,
    )
    assert where(solved(snap, 260), "j1").start == 200


def test_clashing_pins_make_the_plan_infeasible_and_name_the_rule() -> None:
    snap = lab(
        [examiner("e1")],
        [
            job("j1", case="a", weight=5, due=0, pin=("e1", None, 0)),
            job("j2", case="b", weight=1, due=0, pin=("e1", None, 30)),
        ],
    )
    plan = solve(snap, SolveConfig(time_limit=5, workers=1))
    assert verify(snap, plan) == []
    assert plan.status == INFEASIBLE
    conflict = [u for u in plan.unscheduled if u.reason == PIN_CONFLICT]
    assert len(conflict) == 1
    other = "j1" if conflict[0].job == "j2" else "j2"
    assert "examiner_overlap[e=e1]" in conflict[0].detail
    assert other in conflict[0].detail


# -- soft terms -----------------------------------------------------------------------------------


def test_change_against_the_published_schedule_costs_its_weight() -> None:
    people = [examiner("e1", available=[(0, 60), (DAY, DAY + 60)])]
    jobs = [job("j1", case="a", due=None), job("j2", case="b", weight=100, due=60)]
    published = [PreviousAssignment("j1", "e1", None, 0)]
    plan = solved(lab(people, jobs, previous=published), 50)
    assert plan.terms["change"] == 1
    sticky = lab(people, jobs, previous=published, weights=Weights(change=200_000))
    plan = solved(sticky, 100 * DAY)
    assert plan.terms["change"] == 0


def test_equal_cost_plans_keep_the_published_start() -> None:
    """The change term counts examiner, workstation and day, so any start on day 0 costs 0;
    the tie-break also keeps the published hour. Hinted two hours off, the model moves j1 back."""
    snap = lab(
        [examiner("e1", available=[(0, 480)])],
        [job("j1", due=None)],
        previous=[PreviousAssignment("j1", "e1", None, 240)],
    )
    ctx = build_model(snap, ["j1"], {}, tie_break=True)
    add_hint(ctx, {"j1": Assignment("j1", "e1", None, 120, 180)})
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(ctx.model) == cp_model.OPTIMAL
    assert ctx.tie_scale == 2  # one published start that could be kept
    assert divmod(round(solver.objective_value), ctx.tie_scale) == (0, 0)
    assert read_solution(ctx, solver)["j1"] == Assignment("j1", "e1", None, 240, 300)


def test_balance_spreads_exposure() -> None:
    jobs = [job(f"j{i}", case=f"c{i}", exposure=60) for i in (1, 2)]
    spread = solved(lab([examiner("e1"), examiner("e2")], jobs), 0)
    assert {a.examiner for a in spread.assignments} == {"e1", "e2"}
    # e2 can take exposure work (j3), so it counts in the spread even though j1, j2 must go to e1.
    # (Due dates make leaving a job out cost something: without one it would be free.)
    one_sided = [job(f"j{i}", case=f"c{i}", exposure=60, examiners=["e1"], due=DAY) for i in (1, 2)]
    one_sided.append(job("j3", case="c3", exposure=60, due=DAY))
    plan = solved(lab([examiner("e1"), examiner("e2")], one_sided), 5 * 60)
    assert plan.terms["balance"] == 60
    assert where(plan, "j3").examiner == "e2"


def test_continuity_prefers_one_examiner_per_case() -> None:
    jobs = [job("j1", weight=10, due=60), job("j2", weight=10, due=60)]
    split = solved(lab([examiner("e1"), examiner("e2")], jobs), 2)  # lateness costs more
    assert split.terms["continuity"] == 1
    jobs = [job("j1", weight=1, due=60), job("j2", weight=1, due=60)]
    one = lab([examiner("e1"), examiner("e2")], jobs, weights=Weights(continuity=100))
    assert solved(one, 60).terms["continuity"] == 0


# -- makespan ------------------------------------------------------------------------------------


def test_makespan_objective() -> None:
    ws = [workstation("w1", ["m"]), workstation("w2", ["m"])]
    jobs = [
        job("j1", case="a", attended=0, skills=[], machine_by_workstation={"w1": 30, "w2": 50}),
        job("j2", case="b", attended=0, skills=[], machine_by_workstation={"w1": 40, "w2": 20}),
        job(
            "j3",
            case="a",
            attended=0,
            skills=[],
            machine_by_workstation={"w1": 10, "w2": 10},
            after=["j1"],
        ),
    ]
    snap = lab([], jobs, ws, horizon=500, objective="makespan")
    plan = solved(snap, 40)
    assert max(a.end for a in plan.assignments) == 40
