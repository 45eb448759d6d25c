"""The capacity analysis: loads per resource over the horizon and the bottleneck, on tiny labs
solved by the real engine (docs/architecture.md §5.10)."""

from __future__ import annotations

from tiny_labs import DAY, examiner, job, lab, shifts, workstation

from scheduler.core.capacity import analyse, capacity_to_json, union
from scheduler.core.plan import Assignment, Plan
from scheduler.core.snapshot import Pool
from scheduler.core.solve import SolveConfig, solve
from scheduler.core.verify import verify
from scheduler.planning.capacity import bottleneck_sentence


def _solved(snapshot):
    plan = solve(snapshot, SolveConfig(time_limit=10, workers=1))
    assert verify(snapshot, plan) == []
    return plan


def licence_bound_lab():
    """One examiner on two 8-hour shifts, one licence: processing (15 min attended to start,
    12 h on the server) can start only in a shift, so one licence passes one job a day and the
    third job's review waits for it while the examiner is mostly idle."""
    jobs = []
    for n in (1, 2, 3):
        jobs.append(
            job(
                f"p{n}",
                case=f"c{n}",
                attended=15,
                machine=720,
                skills=(),
                capabilities=("processing",),
                pools=("axiom",),
            )
        )
        jobs.append(job(f"r{n}", case=f"c{n}", attended=120, skills=("review",), after=(f"p{n}",)))
    return lab(
        [examiner("e1", ("review",), shifts(2))],
        jobs,
        [
            workstation("s1", ("processing",), horizon=2 * DAY),
            workstation("s2", ("processing",), horizon=2 * DAY),
        ],
        [Pool("axiom", 1)],
        horizon=2 * DAY,
    )


def test_a_licence_pool_that_passes_one_job_a_day_is_named_the_bottleneck():
    snapshot = licence_bound_lab()
    plan = _solved(snapshot)
    assert {a.job for a in plan.assignments} == {"p1", "p2", "r1"}
    capacity = analyse(snapshot, plan, {"r3": "review", "p3": "process"})
    pool = capacity.of_kind("pool")[0]
    # The licence is held 2 x 12 h of the 48 h horizon, but through every shift minute.
    assert (pool.available, pool.in_shifts, pool.planned, pool.planned_in_shifts) == (
        2 * DAY,
        960,
        1440,
        960,
    )
    assert pool.demand == 3 * 720 and pool.waiting == 1
    assert (pool.share, pool.shift_share, pool.pressure) == (0.5, 1.0, 0.75)
    assert capacity.examiners.planned == 15 + 15 + 120 and capacity.examiners.available == 960
    b = capacity.bottleneck
    assert b is not None and (b.kind, b.id) == ("pool", "axiom")
    assert b.waiting_behind == 1 and dict(b.waiting_by_stage) == {"review": 1}
    assert b.blocked == 1 and b.blocked_stage == "process"
    figures = capacity_to_json(capacity)
    assert bottleneck_sentence(figures) == (
        "AXIOM licences (1) are 100 % busy in shift hours (36 h needed for 48 h over the "
        "horizon); examiners 16 % busy (7 h of attended work for 16 h of shifts); "
        "1 review job waits for processing."
    )


def test_examiners_are_the_bottleneck_when_their_shifts_are_full():
    snapshot = lab(
        [examiner("e1", ("review",), shifts(2))],
        [job(f"r{n}", case=f"c{n}", attended=480, skills=("review",)) for n in (1, 2, 3)],
        horizon=2 * DAY,
    )
    capacity = analyse(snapshot, _solved(snapshot))
    review = next(load for load in capacity.of_kind("skill") if load.id == "review")
    assert (review.planned, review.available, review.demand, review.waiting) == (960, 960, 1440, 1)
    assert capacity.bottleneck is not None
    assert (capacity.bottleneck.kind, capacity.bottleneck.id) == ("skill", "review")
    assert capacity.bottleneck.shift_share == 1.0


def test_no_bottleneck_when_every_job_fits():
    snapshot = lab(
        [examiner("e1", ("mobile",), shifts(2))], [job("a", attended=60)], horizon=2 * DAY
    )
    capacity = analyse(snapshot, _solved(snapshot))
    assert capacity.bottleneck is None and capacity.unscheduled == 0
    assert bottleneck_sentence(capacity_to_json(capacity)).startswith(
        "No bottleneck: every open job is planned within the horizon; examiners 6 % busy"
    )


def test_shift_hours_are_the_union_of_examiner_windows():
    assert union([((0, 60), (120, 180)), ((30, 90),), ((180, 200),)]) == ((0, 90), (120, 200))
    snapshot = lab(
        [examiner("e1", ("mobile",), ((0, 60),)), examiner("e2", ("mobile",), ((30, 90),))],
        [],
        horizon=DAY,
    )
    empty = Plan(status="optimal", objective=0, bound=0, solve_seconds=0.0, assignments=())
    assert analyse(snapshot, empty).shift_minutes == 90


def test_an_assignment_outside_the_snapshot_is_ignored():
    snapshot = lab([examiner("e1", ("mobile",), shifts(1))], [job("a")], horizon=DAY)
    plan = Plan(
        status="feasible",
        objective=0,
        bound=0,
        solve_seconds=0.0,
        assignments=(Assignment("gone", "e1", None, 0, 60), Assignment("a", "e1", None, 60, 120)),
    )
    assert analyse(snapshot, plan).examiners.planned == 60
