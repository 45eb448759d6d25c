"""Plan -> ScheduleVersion and publishing: verified plans only, one current version, the diff."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from lab_builders import MONDAY, small_lab
from sqlalchemy import func, select

from models import AuditEvent, Job, ScheduleVersion, SolveRun
from scheduler.core.dispatch import dispatch
from scheduler.core.plan import Assignment, Forecast, Plan
from scheduler.core.verify import verify
from scheduler.errors import Conflict
from scheduler.planning.loader import load_snapshot
from scheduler.planning.publish import current_version, diff, publish
from scheduler.planning.store import PlanRejected, store_plan
from scheduler.services.integrity import flush


def _versions(session, lab) -> int:
    return session.scalar(
        select(func.count()).select_from(ScheduleVersion).where(ScheduleVersion.lab_id == lab.id)
    )


def _solved(session, lab, policy="fifo", now=MONDAY):
    snapshot, idmap = load_snapshot(session, lab, now)
    plan = dispatch(snapshot, policy)
    assert verify(snapshot, plan) == []
    return snapshot, plan, idmap


def test_a_plan_that_breaks_a_hard_rule_is_refused_and_nothing_is_stored(session):
    lab = small_lab(session, "s-bad")
    snapshot, plan, idmap = _solved(session, lab)
    first = plan.assignments[0]
    # Move one assignment onto a time no one is available (Sunday night).
    broken = replace(
        plan,
        assignments=(
            replace(first, start=snapshot.horizon - 10, end=snapshot.horizon + 50),
            *plan.assignments[1:],
        ),
    )
    with pytest.raises(PlanRejected) as raised:
        store_plan(session, lab, None, snapshot, broken, idmap)
    assert "hard rule" in raised.value.detail
    assert raised.value.extra["violations"][0]["job"] == first.job
    assert _versions(session, lab) == 0


def test_a_stored_version_keeps_assignments_reasons_forecast_terms_and_kpis(session):
    lab = small_lab(session, "s-store", cases=4)
    snapshot, plan, idmap = _solved(session, lab)
    left_out = plan.unscheduled[0].job if plan.unscheduled else None
    if left_out is not None:
        plan = replace(
            plan, forecast=(Forecast(left_out, snapshot.horizon, snapshot.horizon + 90),)
        )
    version = store_plan(session, lab, None, snapshot, plan, idmap)
    assert version.is_current is False and version.published_at is None
    assert len(version.assignments) == len(plan.assignments)
    assert len(version.unscheduled) == len(plan.unscheduled)
    stored = {a.job_id: a for a in version.assignments}
    tl = idmap.timeline
    for a in plan.assignments:
        row = stored[idmap.jobs[a.job]]
        assert row.starts_at == tl.epoch + timedelta(minutes=a.start)
        assert row.ends_at == tl.epoch + timedelta(minutes=a.end)
        assert row.examiner_id == (idmap.examiners[a.examiner] if a.examiner else None)
    if left_out is not None:
        (entry,) = version.forecast
        assert entry.job_id == idmap.jobs[left_out]
        assert entry.ends_at - entry.starts_at == timedelta(minutes=90)
    assert version.terms == dict(plan.terms)
    kpis = version.kpis
    assert kpis["scheduled"] == len(plan.assignments)
    assert kpis["jobs"] == len(snapshot.jobs)
    assert kpis["weighted_tardiness"] == plan.terms["tardiness"]
    assert set(kpis["jobs_on_time_by_level"]) == {"P1", "P2", "P3", "P4"}
    assert kpis["start_on_time_by_level"]["P1"]["cases"] == 1
    assert kpis["p1_on_time"] == kpis["start_on_time_by_level"]["P1"]["rate"]
    planned_exposure = sum(
        job.exposure
        for job in snapshot.jobs
        for a in plan.assignments
        if a.job == job.id and a.examiner is not None
    )
    assert sum(e["planned_total"] for e in kpis["exposure"].values()) == planned_exposure
    assert set(kpis["exposure"]["E1"]) >= {"daily_cap", "weekly_cap", "days", "weeks"}


def _hand_plan(snapshot, placements):
    jobs = {job.id: job for job in snapshot.jobs}
    from scheduler.core.plan import Unscheduled

    return Plan(
        "feasible",
        0,
        None,
        0.0,
        tuple(
            Assignment(j, e, w, s, s + jobs[j].duration_on(w))
            for j, (e, w, s) in placements.items()
        ),
        tuple(Unscheduled(j.id, "horizon_full") for j in snapshot.jobs if j.id not in placements),
    )


def test_publish_switches_the_current_version_stores_the_diff_and_marks_jobs(session):
    lab = small_lab(session, "s-pub", cases=2)
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    one = store_plan(
        session,
        lab,
        None,
        snapshot,
        _hand_plan(snapshot, {"C1/D1/acquire": ("E1", "U1", 0)}),
        idmap,
    )
    publish(session, one, actor="sup")
    assert current_version(session, lab).id == one.id
    assert one.diff["counts"] == {"moved": 0, "added": 1, "removed": 0, "unchanged": 0}
    acquire1 = session.get(Job, idmap.jobs["C1/D1/acquire"])
    assert acquire1.status == "scheduled"

    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    # Frozen: C1's acquire must stay; C2's acquire is added after it.
    two = store_plan(
        session,
        lab,
        None,
        snapshot,
        _hand_plan(
            snapshot, {"C1/D1/acquire": ("E1", "U1", 0), "C2/D1/acquire": ("E2", "U1", 120)}
        ),
        idmap,
    )
    publish(session, two, actor="sup")
    session.refresh(one)
    assert (one.is_current, two.is_current) == (False, True)
    assert two.published_at is not None
    assert two.diff["from_version"] == one.id
    assert two.diff["counts"] == {"moved": 0, "added": 1, "removed": 0, "unchanged": 1}
    assert two.diff["added"][0]["job_id"] == idmap.jobs["C2/D1/acquire"]
    events = session.scalars(
        select(AuditEvent.action).where(
            AuditEvent.lab_id == lab.id, AuditEvent.action == "schedule.publish"
        )
    ).all()
    assert len(events) == 2
    # Publishing the current version again changes nothing.
    assert publish(session, two, actor="sup").id == two.id


def test_diff_lists_moved_and_removed_assignments(session):
    lab = small_lab(session, "s-diff", cases=2)
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    a = store_plan(
        session,
        lab,
        None,
        snapshot,
        _hand_plan(
            snapshot, {"C1/D1/acquire": ("E1", "U1", 0), "C2/D1/acquire": ("E2", "U1", 120)}
        ),
        idmap,
    )
    b = store_plan(
        session,
        lab,
        None,
        snapshot,
        _hand_plan(snapshot, {"C1/D1/acquire": ("E2", "U1", 0)}),
        idmap,
    )
    changes = diff(a, b)
    assert changes["counts"] == {"moved": 1, "added": 0, "removed": 1, "unchanged": 0}
    assert changes["moved"][0]["changes"] == ["examiner"]
    assert changes["removed"][0]["job_id"] == idmap.jobs["C2/D1/acquire"]


def test_the_database_refuses_two_current_versions_of_one_lab(session):
    lab = small_lab(session, "s-uniq", cases=1)
    snapshot, plan, idmap = _solved(session, lab)
    one = store_plan(session, lab, None, snapshot, plan, idmap)
    two = store_plan(session, lab, None, snapshot, plan, idmap)
    publish(session, one, actor="sup")
    two.is_current = True
    with pytest.raises(Conflict, match="uq_schedule_version_current|schedule_version"):
        flush(session)


def test_a_preview_is_never_published_and_an_older_version_not_over_a_newer_one(session):
    lab = small_lab(session, "s-prev", cases=1)
    snapshot, plan, idmap = _solved(session, lab)
    preview = SolveRun(lab_id=lab.id, mode="preview", status="succeeded", requested_by="t")
    session.add(preview)
    flush(session)
    version = store_plan(session, lab, preview, snapshot, plan, idmap)
    with pytest.raises(Conflict, match="preview"):
        publish(session, version, actor="sup")
    older = store_plan(session, lab, None, snapshot, plan, idmap)
    newer = store_plan(session, lab, None, snapshot, plan, idmap)
    publish(session, newer, actor="sup")
    with pytest.raises(Conflict, match="older"):
        publish(session, older, actor="sup")
    assert current_version(session, lab).id == newer.id


def test_objectives_beyond_32_bits_are_stored(session):
    lab = small_lab(session, "s-big", cases=1)
    snapshot, plan, idmap = _solved(session, lab)
    big = replace(plan, objective=7_667_218_796, bound=4_110_149_580)
    run = SolveRun(lab_id=lab.id, requested_by="t", objective=big.objective, bound=big.bound)
    session.add(run)
    flush(session)
    version = store_plan(session, lab, run, snapshot, big, idmap)
    session.expire_all()
    assert (version.objective, version.bound) == (7_667_218_796, 4_110_149_580)
    assert session.get(SolveRun, run.id).objective == 7_667_218_796
