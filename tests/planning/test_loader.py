"""Database -> Snapshot: days, availability, exposure, due times, pins, published schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from lab_builders import (
    MONDAY,
    make_case,
    make_device,
    make_examiner,
    make_lab,
    make_workstation,
    phone_chain,
    small_lab,
)
from sqlalchemy import select

from models import Job
from scheduler.core.plan import Assignment, Plan, Unscheduled
from scheduler.core.snapshot import snapshot_from_json, snapshot_to_json
from scheduler.errors import Invalid
from scheduler.planning.loader import STAGE_ALLOWANCE_HOURS, load_snapshot, round_up_to_slot
from scheduler.planning.loading.timeline import NEAR_CHANGES
from scheduler.planning.publish import publish
from scheduler.planning.store import store_plan
from scheduler.services import casework, resources

EPOCH = datetime(2026, 11, 30, 13, 15, tzinfo=UTC)  # MONDAY rounded up to the 15-minute slot


def minutes(instant: datetime) -> int:
    return int((instant - EPOCH).total_seconds() // 60)


def test_epoch_is_rounded_up_to_the_slot_in_lab_local_time():
    from zoneinfo import ZoneInfo

    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30: slots align with local, not UTC, hours
    now = datetime(2026, 11, 30, 3, 31, tzinfo=UTC)  # 09:01 local
    assert round_up_to_slot(now, kolkata, 60) == datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
    exact = datetime(2026, 11, 30, 13, 15, tzinfo=UTC)
    assert round_up_to_slot(exact, ZoneInfo("America/New_York"), 15) == exact


def test_horizon_days_weeks_and_frozen_horizon(session):
    lab = make_lab(session, "t-days", planning_horizon_days=3)
    make_examiner(session, lab, "E1")
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert snapshot.epoch == EPOCH.isoformat()
    # Mon (from 08:15 EST), Tue, Wed; the horizon ends at local midnight after Wednesday.
    assert snapshot.days == ((0, 945), (945, 2385), (2385, 3825))
    assert snapshot.horizon == 3825
    assert snapshot.weeks == ((0, 3825),)
    assert snapshot.frozen_until == 2385  # end of the next working day (Tuesday)
    assert idmap.timeline.day_dates == (date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2))


def test_days_follow_the_dst_change_and_weeks_start_on_monday(session):
    lab = make_lab(session, "t-dst", planning_horizon_days=3)
    make_examiner(session, lab, "E1")
    friday = datetime(2026, 10, 30, 12, 7, tzinfo=UTC)  # 08:07 EDT; DST ends Sunday Nov 1
    snapshot, _ = load_snapshot(session, lab, friday)
    lengths = [end - start for start, end in snapshot.days]
    assert lengths == [945, 1440, 1500, 1440, 1440]  # Sunday has 25 hours
    assert snapshot.weeks == ((0, 3885), (3885, 6765))
    e1 = snapshot.examiners[0]
    # 08:00-16:30 wall clock on both sides of the change: Monday starts 13:00 UTC, not 12:00.
    assert e1.available[0] == (0, 495)
    assert e1.available[1] == (3885 + 480, 3885 + 990)


def test_availability_is_shifts_minus_absences_and_exposure_stops_at_the_cutoff(session):
    lab = make_lab(session, "t-avail", planning_horizon_days=3)
    examiner = make_examiner(session, lab, "E1", exposure_cutoff=time(15, 0))
    make_examiner(session, lab, "E2", active=False)
    # Counselling Tuesday 10:00-11:00 EST (15:00-16:00 UTC).
    resources.add_absence(
        session,
        examiner,
        actor="t",
        kind="counselling",
        starts_at=datetime(2026, 12, 1, 15, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 1, 16, 0, tzinfo=UTC),
    )
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert [e.id for e in snapshot.examiners] == ["E1"]  # inactive examiners are not planned
    e1 = snapshot.examiners[0]
    tuesday_8 = minutes(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    assert e1.available == (
        (0, 495),
        (tuesday_8, tuesday_8 + 120),
        (tuesday_8 + 180, tuesday_8 + 510),
        (tuesday_8 + 1440, tuesday_8 + 1440 + 510),
    )
    assert e1.exposure.windows == (
        (0, 405),
        (tuesday_8, tuesday_8 + 120),
        (tuesday_8 + 180, tuesday_8 + 420),
        (tuesday_8 + 1440, tuesday_8 + 1440 + 420),
    )
    assert (e1.exposure.daily_cap, e1.exposure.severe_daily_cap, e1.exposure.weekly_cap) == (
        240,
        120,
        900,
    )
    assert idmap.examiners == {"E1": examiner.id}


def test_exposure_already_logged_counts_this_week_and_today(session):
    lab = make_lab(session, "t-logs", planning_horizon_days=3)
    examiner = make_examiner(session, lab, "E1")
    for day, logged in ((27, 200), (30, 60), (1, 30), (2, 45)):
        month = 11 if day > 2 else 12
        resources.log_exposure(
            session, examiner, actor="t", day=date(2026, month, day), minutes=logged, severity=2
        )
    wednesday = datetime(2026, 12, 2, 13, 7, tzinfo=UTC)
    snapshot, _ = load_snapshot(session, lab, wednesday)
    policy = snapshot.examiners[0].exposure
    assert policy.used_this_week == 90  # Monday + Tuesday; last Friday is another week
    assert dict(policy.used_by_day) == {0: 45}


def test_jobs_weights_releases_due_times_and_chains(session):
    lab = make_lab(session, "t-jobs", planning_horizon_days=3)
    make_examiner(session, lab, "E1")
    make_workstation(session, lab, "U1")
    received = MONDAY - timedelta(hours=2)
    urgent = make_case(session, lab, "C1", priority="P1", received_at=received)
    acquire, process, review = phone_chain(session, make_device(session, urgent))
    court = make_case(
        session,
        lab,
        "C2",
        priority="P1",
        received_at=received,
        legal_deadline_at=MONDAY + timedelta(days=1),
    )
    phone_chain(session, make_device(session, court, arrived_at=MONDAY + timedelta(hours=3)))
    closed = make_case(session, lab, "C3", status="closed")
    phone_chain(session, make_device(session, closed))

    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    jobs = {job.id: job for job in snapshot.jobs}
    assert sorted(jobs) == sorted(
        f"{c}/D1/{stage}" for c in ("C1", "C2") for stage in ("acquire", "process", "review")
    )
    a, p, r = jobs["C1/D1/acquire"], jobs["C1/D1/process"], jobs["C1/D1/review"]
    first_due = minutes(received + timedelta(hours=24))
    step = STAGE_ALLOWANCE_HOURS * 60
    assert (a.due, p.due, r.due) == (first_due, first_due + step, first_due + 2 * step)
    assert a.weight == 1000 and a.release == 0 and a.after == ()
    assert p.after == ("C1/D1/acquire",) and r.after == ("C1/D1/process",)
    assert (a.attended, a.machine, a.skills, a.capabilities) == (
        60,
        120,
        frozenset({"mobile"}),
        frozenset({"ufed"}),
    )
    assert (r.exposure, r.severity) == (100, 1)
    # The court date caps every due time of the case; the device arrives in three hours.
    deadline = minutes(MONDAY + timedelta(days=1))
    c2 = [jobs[f"C2/D1/{s}"] for s in ("acquire", "process", "review")]
    assert [j.due for j in c2] == [min(first_due, deadline), deadline, deadline]
    assert {j.release for j in c2} == {minutes(MONDAY + timedelta(hours=3))}
    assert idmap.jobs["C1/D1/acquire"] == acquire.id
    assert idmap.job_level["C1/D1/review"] == "P1"
    assert snapshot_from_json(snapshot_to_json(snapshot)) == snapshot


def test_done_predecessors_are_dropped_and_held_ones_block_their_successors(session):
    lab = make_lab(session, "t-preds")
    make_examiner(session, lab, "E1")
    make_workstation(session, lab, "U1")
    done_chain = phone_chain(session, make_device(session, make_case(session, lab, "C1")))
    casework.set_job_status(session, done_chain[0], actor="t", status="done")
    held_chain = phone_chain(session, make_device(session, make_case(session, lab, "C2")))
    casework.set_job_status(session, held_chain[0], actor="t", status="on_hold")

    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    jobs = {job.id: job for job in snapshot.jobs}
    assert "C1/D1/acquire" not in jobs
    assert jobs["C1/D1/process"].after == ()
    # The process stage's due time still counts the finished acquire stage before it.
    assert jobs["C1/D1/process"].due > jobs["C1/D1/process"].release
    assert not any(job_id.startswith("C2/") for job_id in jobs)
    excluded = {e.job_id: e for e in idmap.excluded}
    assert set(excluded) == {held_chain[1].id, held_chain[2].id}
    assert {e.reason for e in excluded.values()} == {"predecessor_unscheduled"}
    assert "C2/D1/acquire" in excluded[held_chain[1].id].detail


def test_a_pin_is_kept_and_a_past_in_progress_placement_keeps_only_the_remaining_work(session):
    lab = small_lab(session, "t-pins", cases=2)
    e1 = resources.get_examiner(session, lab, "E1")
    u1 = resources.get_workstation(session, lab, "U1")
    jobs = {
        (j.device.case.external_ref, j.external_ref): j
        for j in session.scalars(select(Job).where(Job.lab_id == lab.id))
    }
    tuesday_9 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    casework.pin_job(
        session, jobs[("C2", "acquire")], actor="t", start=tuesday_9, examiner=e1, workstation=u1
    )
    # C1's acquire started 30 minutes before the epoch (pinned there, now in progress).
    started = EPOCH - timedelta(minutes=30)
    casework.pin_job(
        session, jobs[("C1", "acquire")], actor="t", start=started, examiner=e1, workstation=u1
    )
    casework.set_job_status(session, jobs[("C1", "acquire")], actor="t", status="in_progress")

    snapshot, _ = load_snapshot(session, lab, MONDAY)
    by_id = {job.id: job for job in snapshot.jobs}
    pinned = by_id["C2/D1/acquire"]
    assert pinned.pin is not None
    assert (pinned.pin.examiner, pinned.pin.workstation, pinned.pin.start) == (
        "E1",
        "U1",
        minutes(tuesday_9),
    )
    running = by_id["C1/D1/acquire"]
    assert running.pin is not None and running.pin.start == 0
    assert (running.attended, running.machine) == (30, 90)


def test_a_pin_on_an_inactive_examiner_is_reported_not_loaded(session):
    lab = small_lab(session, "t-pin-off", cases=1)
    e2 = resources.get_examiner(session, lab, "E2")
    acquire = session.scalar(select(Job).where(Job.lab_id == lab.id, Job.external_ref == "acquire"))
    casework.pin_job(
        session, acquire, actor="t", start=MONDAY + timedelta(days=1), examiner=e2, workstation=None
    )
    resources.upsert_examiner(session, lab, actor="t", external_ref="E2", active=False)
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert snapshot.jobs == ()  # the pinned job and, waiting for it, its successors
    reasons = {e.job_id: e.reason for e in idmap.excluded}
    assert reasons[acquire.id] == "pin_conflict"
    assert sorted(reasons.values()).count("predecessor_unscheduled") == 2


def _publish_manual(session, lab, placements: dict[str, tuple[str | None, str | None, int]]):
    """Publish a hand-made plan: ``placements`` by job id, every other job unscheduled."""
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    jobs = {job.id: job for job in snapshot.jobs}
    assignments = tuple(
        Assignment(job, ex, ws, start, start + jobs[job].duration_on(ws))
        for job, (ex, ws, start) in placements.items()
    )
    unscheduled = tuple(
        Unscheduled(job.id, "horizon_full") for job in snapshot.jobs if job.id not in placements
    )
    plan = Plan("feasible", 0, None, 0.0, assignments, unscheduled)
    version = store_plan(session, lab, None, snapshot, plan, idmap)
    return publish(session, version, actor="t")


def test_previous_is_the_published_schedule_and_a_frozen_placement_that_no_longer_fits_is_dropped(
    session,
):
    lab = small_lab(session, "t-prev", cases=2)
    tuesday_9 = minutes(datetime(2026, 12, 1, 14, 0, tzinfo=UTC))
    _publish_manual(
        session,
        lab,
        {"C1/D1/acquire": ("E1", "U1", tuesday_9), "C2/D1/acquire": ("E2", "U1", 0)},
    )
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert {(p.job, p.examiner, p.workstation, p.start) for p in snapshot.previous} == {
        ("C1/D1/acquire", "E1", "U1", tuesday_9),
        ("C2/D1/acquire", "E2", "U1", 0),
    }
    # E1 falls ill on Tuesday: the frozen placement is re-planned, not reported as a conflict.
    resources.add_absence(
        session,
        resources.get_examiner(session, lab, "E1"),
        actor="t",
        kind="sick",
        starts_at=datetime(2026, 12, 1, 5, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 2, 5, 0, tzinfo=UTC),
    )
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert [p.job for p in snapshot.previous] == ["C2/D1/acquire"]
    assert any("C1/D1/acquire" in w and "re-planned" in w for w in idmap.warnings)


def test_published_work_of_the_next_three_working_days_counts_more_changes(session):
    # Monday: the next three working days are Tue, Wed, Thu; moving their published work counts
    # NEAR_CHANGES changes, Friday's one (examiners plan their next days around the schedule).
    lab = small_lab(session, "t-near", cases=2, planning_horizon_days=6)
    thursday_9 = minutes(datetime(2026, 12, 3, 14, 0, tzinfo=UTC))
    friday_9 = minutes(datetime(2026, 12, 4, 14, 0, tzinfo=UTC))
    _publish_manual(
        session,
        lab,
        {"C1/D1/acquire": ("E1", "U1", thursday_9), "C2/D1/acquire": ("E2", "U1", friday_9)},
    )
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert idmap.timeline.near_until == minutes(datetime(2026, 12, 4, 5, 0, tzinfo=UTC))
    assert {p.job: p.changes for p in snapshot.previous} == {
        "C1/D1/acquire": NEAR_CHANGES,
        "C2/D1/acquire": 1,
    }
    # the contract carries it: a snapshot file says so, and reads back the same
    assert snapshot_from_json(snapshot_to_json(snapshot)).previous == snapshot.previous


def test_repair_mode_pins_unchanged_work_beyond_the_repair_window(session):
    lab = small_lab(session, "t-repair", cases=2, planning_horizon_days=6)
    friday_9 = minutes(datetime(2026, 12, 4, 14, 0, tzinfo=UTC))
    _publish_manual(
        session,
        lab,
        {"C1/D1/acquire": ("E1", "U1", friday_9), "C2/D1/acquire": ("E2", "U1", friday_9 + 180)},
    )
    full, _ = load_snapshot(session, lab, MONDAY, mode="full")
    assert all(job.pin is None for job in full.jobs)
    repair, idmap = load_snapshot(session, lab, MONDAY, mode="repair")
    pins = {job.id: job.pin for job in repair.jobs if job.pin is not None}
    assert set(pins) == {"C1/D1/acquire", "C2/D1/acquire"}
    assert pins["C1/D1/acquire"].start == friday_9
    # A case changed since publication (escalated) is re-solved, not pinned.
    casework.upsert_case(
        session, lab, actor="t", external_ref="C2", priority="P1", received_at=MONDAY
    )
    repair, _ = load_snapshot(session, lab, MONDAY, mode="repair")
    assert {job.id for job in repair.jobs if job.pin is not None} == {"C1/D1/acquire"}


def test_unknown_mode_and_naive_time_are_refused(session):
    lab = make_lab(session, "t-bad")
    with pytest.raises(Invalid, match="mode"):
        load_snapshot(session, lab, MONDAY, mode="quick")
    with pytest.raises(Invalid, match="timezone-aware"):
        load_snapshot(session, lab, MONDAY.replace(tzinfo=None))


def test_a_frozen_placement_whose_predecessor_is_re_planned_is_re_planned_too(session):
    lab = small_lab(session, "t-cascade", cases=1)
    tuesday_9 = minutes(datetime(2026, 12, 1, 14, 0, tzinfo=UTC))
    _publish_manual(
        session,
        lab,
        {
            "C1/D1/acquire": ("E1", "U1", tuesday_9),
            "C1/D1/process": (None, "U1", tuesday_9 + 120),
        },
    )
    snapshot, _ = load_snapshot(session, lab, MONDAY)
    assert [p.job for p in snapshot.previous] == ["C1/D1/acquire", "C1/D1/process"]
    resources.add_absence(  # E1 is away Tuesday morning: acquire moves, so must process
        session,
        resources.get_examiner(session, lab, "E1"),
        actor="t",
        kind="training",
        starts_at=datetime(2026, 12, 1, 13, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 1, 17, 0, tzinfo=UTC),
    )
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert snapshot.previous == ()
    assert any("C1/D1/process" in w and "waits for C1/D1/acquire" in w for w in idmap.warnings)
    # A pinned job is not listed in previous: its pin governs.
    acquire = session.scalar(select(Job).where(Job.lab_id == lab.id, Job.external_ref == "acquire"))
    casework.pin_job(
        session,
        acquire,
        actor="t",
        start=datetime(2026, 12, 2, 14, 0, tzinfo=UTC),
        examiner=resources.get_examiner(session, lab, "E2"),
        workstation=resources.get_workstation(session, lab, "U1"),
    )
    snapshot, _ = load_snapshot(session, lab, MONDAY)
    assert all(p.job != "C1/D1/acquire" for p in snapshot.previous)


def test_a_skill_no_examiner_has_is_loaded_and_named_in_the_warnings(session):
    lab = make_lab(session, "t-no-skill")
    make_examiner(session, lab, "E1", skills=("mobile",))  # nobody reviews
    make_workstation(session, lab, "U1")
    phone_chain(session, make_device(session, make_case(session, lab, "C1", priority="P2")))
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert any(job.skills == {"review"} for job in snapshot.jobs)  # accepted, not left out
    (warning,) = [w for w in idmap.warnings if "no examiner has skill" in w]
    assert warning.startswith("jobs[C1/") and "'review': 1 job needing it" in warning


def test_a_missed_start_is_taken_as_started_as_planned_until_its_end_plus_the_grace(session):
    lab = small_lab(session, "t-missed", cases=1)
    tuesday_9 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    at = minutes(tuesday_9)
    _publish_manual(
        session,
        lab,
        {"C1/D1/acquire": ("E1", "U1", at), "C1/D1/process": (None, "U1", at + 120)},
    )
    acquire = session.scalar(select(Job).where(Job.lab_id == lab.id, Job.external_ref == "acquire"))
    assert acquire.status == "scheduled"  # published, and nobody pressed :start

    # Half an hour after its planned start: assumed started as planned, its remaining work kept
    # where it is, so process (and the rest of the chain) keep their place in line.
    snapshot, idmap = load_snapshot(session, lab, tuesday_9 + timedelta(minutes=30))
    jobs = {job.id: job for job in snapshot.jobs}
    running = jobs["C1/D1/acquire"]
    assert running.pin is not None
    assert (running.pin.examiner, running.pin.workstation, running.pin.start) == ("E1", "U1", 0)
    assert (running.attended, running.machine) == (30, 90)
    assert running.after == ()
    assert "C1" in idmap.cases_started and idmap.overdue == []

    # Past its planned end (tuesday 11:00 + 120 min machine) plus the lab's grace: overdue,
    # listed for the supervisor and re-planned on its own (no pin, its whole work again).
    late = tuesday_9 + timedelta(minutes=120 + lab.start_grace_minutes + 15)
    snapshot, idmap = load_snapshot(session, lab, late)
    jobs = {job.id: job for job in snapshot.jobs}
    assert jobs["C1/D1/acquire"].pin is None
    assert (jobs["C1/D1/acquire"].attended, jobs["C1/D1/acquire"].machine) == (60, 120)
    assert idmap.overdue == ["C1/D1/acquire"]
    assert any("C1/D1/acquire is overdue" in w for w in idmap.warnings)


def test_the_start_grace_is_a_lab_setting(session):
    lab = small_lab(session, "t-grace", cases=1, start_grace_minutes=0)
    tuesday_9 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    _publish_manual(session, lab, {"C1/D1/acquire": ("E1", "U1", minutes(tuesday_9))})
    _, idmap = load_snapshot(session, lab, tuesday_9 + timedelta(minutes=135))
    assert idmap.overdue == ["C1/D1/acquire"]  # no grace: overdue right after its planned end


def test_a_frozen_review_the_caps_no_longer_allow_is_re_planned_not_kept(session):
    """Exposure logged since publication (or reviewed by work under way) counts first: a frozen
    review it leaves no room for under the daily cap is re-planned, not kept as a conflict."""
    lab = make_lab(session, "t-capped")
    examiner = make_examiner(session, lab, "E1", daily_cap_minutes=240)
    for ref in ("C1", "C2"):
        device = make_device(session, make_case(session, lab, ref))
        casework.upsert_job(
            session,
            device,
            actor="t",
            external_ref="review",
            stage="review",
            attended_minutes=120,
            exposure_minutes=120,
            severity=1,
            skills=["review"],
        )
    tuesday_8 = minutes(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    _publish_manual(
        session,
        lab,
        {"C1/D1/review": ("E1", None, tuesday_8), "C2/D1/review": ("E1", None, tuesday_8 + 120)},
    )
    snapshot, _ = load_snapshot(session, lab, MONDAY)
    assert len(snapshot.previous) == 2  # 120 + 120 fit the cap of 240
    resources.log_exposure(
        session, examiner, actor="t", day=date(2026, 12, 1), minutes=60, severity=1
    )
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    assert [p.job for p in snapshot.previous] == ["C1/D1/review"]
    assert any("C2/D1/review" in w and "exposure_daily_cap" in w for w in idmap.warnings)
