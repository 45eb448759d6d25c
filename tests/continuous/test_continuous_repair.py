"""Repair runs re-solve only their window; frozen, pinned and started work never moves; one solve
per lab at a time; a failed repair keeps the published schedule; logged exposure is respected."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from continuous_support import (
    ACTOR,
    MONDAY,
    add_case,
    build_lab,
    placements,
    published,
    queued_runs,
    solve_and_publish,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Job, JobPredecessor, SolveRun
from scheduler.db import session_scope
from scheduler.planning.engine import solve_snapshot
from scheduler.planning.loader import REPAIR_WINDOW_WORKING_DAYS, load_snapshot
from scheduler.planning.publish import current_version
from scheduler.planning.store import store_plan
from scheduler.services import casework, resources
from scheduler.services.labs import get_lab
from scheduler.worker import run_to_completion


def _repair_run(engine, code) -> int:
    with session_scope(engine) as session:
        (run,) = queued_runs(session, get_lab(session, code))
        assert run.mode == "repair"
        return run.id


def test_a_repair_keeps_everything_beyond_its_window(shared_engine, lab_code):
    with session_scope(shared_engine) as session:
        build_lab(session, lab_code, cases=30, planning_horizon_days=8, solve_time_limit_seconds=2)
    assert solve_and_publish(shared_engine, lab_code) == "succeeded"
    before_id, before = published(shared_engine, lab_code)
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        case = casework.get_case(session, lab, "C1")
        casework.escalate_case(session, lab, case, "P2", ACTOR)
        snapshot, idmap = load_snapshot(session, lab, MONDAY, mode="repair")
        tl = idmap.timeline
        window_end = tl.at(
            tl.end_of_working_day(
                tl.day_dates[0], lab.frozen_working_days + REPAIR_WINDOW_WORKING_DAYS
            )
        )
        escalated = {
            job_id
            for job_id in session.scalars(select(Job.id).where(Job.lab_id == lab.id))
            if idmap.job_case.get(job_id) == case.id
        }
        pinned = {idmap.jobs[j.id] for j in snapshot.jobs if j.pin is not None}
        preds = session.execute(select(JobPredecessor.job_id, JobPredecessor.predecessor_id)).all()
    beyond = {job for job, p in before.items() if p[2] >= window_end and job not in escalated}
    # Work beyond the window whose predecessors are kept too (else it follows them).
    outside = {job: before[job] for job in beyond}
    shrinking = True
    while shrinking:
        waiting = {j for j, pred in preds if j in outside and pred not in outside}
        shrinking = bool(waiting)
        for job in waiting:
            del outside[job]
    assert outside, "the published schedule must reach beyond the repair window"
    assert set(outside) <= pinned  # the loader pins them ...
    assert not escalated & pinned  # ... but not the escalated case's work
    run_id = _repair_run(shared_engine, lab_code)
    assert run_to_completion(shared_engine, run_id, "w", now=MONDAY) == "succeeded"
    after_id, after = published(shared_engine, lab_code)
    assert after_id != before_id  # auto-published (P2)
    assert {job: after.get(job) for job in outside} == outside  # ... and the solver keeps them


OPS = st.one_of(
    st.tuples(st.just("escalate"), st.integers(0, 3), st.sampled_from(["P1", "P2", "P3"])),
    st.tuples(st.just("absence"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(st.just("new_case"), st.sampled_from(["P1", "P3"]), st.integers(0, 0)),
    st.tuples(st.just("start"), st.integers(0, 11), st.integers(0, 0)),
    st.tuples(st.just("pin"), st.integers(0, 11), st.integers(0, 0)),
)


@pytest.fixture(scope="module")
def base_lab(shared_engine) -> str:
    code = "property"
    with session_scope(shared_engine) as session:
        build_lab(session, code, cases=4, planning_horizon_days=4)
    assert solve_and_publish(shared_engine, code, limit=1) == "succeeded"
    return code


def _apply(session: Session, code: str, op: tuple, touched: dict[int, str]) -> None:
    lab = get_lab(session, code)
    kind, a, b = op
    if kind == "escalate":
        case = casework.get_case(session, lab, f"C{a + 1}")
        levels = {lv.id: lv for lv in lab.priority_levels}
        if levels[case.priority_level_id].code > b:
            casework.escalate_case(session, lab, case, b, ACTOR)
    elif kind == "absence":
        examiner = resources.get_examiner(session, lab, f"E{a + 1}")
        start = MONDAY + timedelta(days=b, hours=2)
        resources.add_absence(
            session,
            examiner,
            actor=ACTOR,
            kind="sick",
            starts_at=start,
            ends_at=start + timedelta(hours=3),
        )
    elif kind == "new_case":
        add_case(session, lab, f"N{len(touched)}-{a}", priority=a)
    else:
        version = current_version(session, lab)
        assert version is not None
        jobs = sorted(placements(session, version).items(), key=lambda kv: (kv[1][2], kv[0]))
        job_id, (examiner_id, ws_id, start) = jobs[a % len(jobs)]
        job = session.get(Job, job_id)
        if job_id in touched:
            return
        touched[job_id] = kind
        if kind == "start":
            job.status = "in_progress"
        else:
            job.pin_examiner_id, job.pin_workstation_id, job.pin_start_at = (
                examiner_id,
                ws_id,
                start,
            )
        session.flush()


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, min_size=1, max_size=3))
def test_frozen_pinned_and_started_work_never_moves(shared_engine, base_lab, ops):
    with shared_engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            touched: dict[int, str] = {}
            for op in ops:
                _apply(session, base_lab, op, touched)
            lab = get_lab(session, base_lab)
            before = placements(session, current_version(session, lab))
            snapshot, idmap = load_snapshot(session, lab, MONDAY, mode="repair")
            plan = solve_snapshot(snapshot, time_limit=1)
            placed = {a.job: a for a in plan.assignments}
            reasons = {u.job: u.reason for u in plan.unscheduled}
            for job in snapshot.jobs:
                if job.pin is not None:
                    a = placed.get(job.id)
                    if a is None:  # never placed elsewhere: a conflicting pin is reported
                        assert reasons[job.id], job.id
                        continue
                    assert (a.examiner, a.workstation, a.start) == (
                        job.pin.examiner,
                        job.pin.workstation,
                        job.pin.start,
                    ), job.id
            for prev in snapshot.previous:
                if prev.start < snapshot.frozen_until:
                    a = placed.get(prev.job)
                    if a is None:  # e.g. behind a pin that conflicts with an absence: not moved
                        assert reasons[prev.job], prev.job
                        continue
                    assert (a.examiner, a.workstation, a.start) == (
                        prev.examiner,
                        prev.workstation,
                        prev.start,
                    ), prev.job
            sids = {db_id: sid for sid, db_id in idmap.jobs.items()}
            for job_id in touched:  # started or pinned at its published placement: kept there
                job = next(j for j in snapshot.jobs if j.id == sids[job_id])
                assert job.pin is not None
                assert idmap.timeline.at(job.pin.start) == before[job_id][2]
            store_plan(session, lab, None, snapshot, plan, idmap)  # passes the verifier
        finally:
            session.close()
            transaction.rollback()


def test_two_concurrent_reoptimize_commands_never_solve_one_lab_twice(
    db_url, shared_engine, lab_code
):
    with session_scope(shared_engine) as session:
        build_lab(session, lab_code, cases=4)
    env = {**os.environ, "LABQ_DATABASE_URL": db_url}
    command = [
        sys.executable,
        "-c",
        "from api.cli import main; main()",
        "reoptimize",
        "--lab",
        lab_code,
        "--time-limit",
        "2",
    ]
    children = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=300)[0].decode() for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    with session_scope(shared_engine) as session:
        runs = session.scalars(
            select(SolveRun)
            .where(SolveRun.lab_id == get_lab(session, lab_code).id)
            .order_by(SolveRun.started_at)
        ).all()
        # The second command joins the first one's run if it is still waiting, or queues its
        # own behind it if it is already solving: either way, never two solves at once.
        assert [r.status for r in runs] in (["succeeded"], ["succeeded", "succeeded"])
        for first, second in zip(runs, runs[1:], strict=False):
            assert first.finished_at <= second.started_at


def test_a_failing_repair_leaves_the_published_schedule_intact(shared_engine, lab_code):
    with session_scope(shared_engine) as session:
        build_lab(session, lab_code, cases=2, solve_time_limit_seconds=1)
    assert solve_and_publish(shared_engine, lab_code, policy="fifo") == "succeeded"
    version, before = published(shared_engine, lab_code)
    with session_scope(shared_engine) as session:
        lab = get_lab(session, lab_code)
        casework.escalate_case(session, lab, casework.get_case(session, lab, "C2"), "P1", ACTOR)
    with session_scope(shared_engine) as session:
        # Corrupt the lab itself behind the services' back (one bad record is only left out).
        get_lab(session, lab_code).timezone = "Nowhere/Atlantis"
    run_id = _repair_run(shared_engine, lab_code)
    assert run_to_completion(shared_engine, run_id, "w", now=MONDAY) == "failed"
    assert published(shared_engine, lab_code) == (version, before)


@pytest.mark.parametrize("logged", [0, 240])
def test_logged_exposure_today_keeps_exposure_work_off_that_examiner_today(session, logged):
    lab = build_lab(session, f"exposure{logged}", cases=0)
    resources.upsert_examiner(session, lab, actor=ACTOR, external_ref="E2", active=False)
    case = casework.upsert_case(
        session, lab, actor=ACTOR, external_ref="R1", priority="P1", received_at=MONDAY
    )
    device = casework.upsert_device(
        session, case, actor=ACTOR, external_ref="D1", kind="phone", arrived_at=MONDAY
    )
    casework.upsert_job(
        session,
        device,
        actor=ACTOR,
        external_ref="review",
        stage="review",
        attended_minutes=60,
        exposure_minutes=45,
        severity=1,
        skills=["review"],
    )
    examiner = resources.get_examiner(session, lab, "E1")
    if logged:
        resources.log_exposure(
            session, examiner, actor=ACTOR, day=MONDAY.date(), minutes=logged, severity=1
        )
    snapshot, _ = load_snapshot(session, lab, MONDAY)
    plan = solve_snapshot(snapshot, time_limit=1)
    (placed,) = plan.assignments
    today = snapshot.days[0]
    starts_today = today[0] <= placed.start < today[1]
    assert placed.examiner == "E1"
    assert starts_today == (logged == 0)  # capped today: the review waits for tomorrow
