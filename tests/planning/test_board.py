"""The console's read models: the board over working hours, the backlog chart, the exposure grid."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lab_builders import (
    MONDAY,
    make_case,
    make_device,
    make_examiner,
    make_lab,
    make_workstation,
    phone_chain,
)

from models import Assignment, ExposureLog, ScheduleVersion
from scheduler.planning import board as boards
from scheduler.planning import console as reads

TZ = ZoneInfo("America/New_York")
FRIDAY = date(2026, 12, 4)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), TZ)


def _published(session, lab, placements, frozen_until=None):
    version = ScheduleVersion(
        lab_id=lab.id,
        epoch=MONDAY,
        status="feasible",
        is_current=True,
        published_at=MONDAY,
        kpis={"frozen_until": frozen_until.isoformat()} if frozen_until else {},
    )
    session.add(version)
    session.flush()
    for job, examiner, workstation, start, end in placements:
        session.add(
            Assignment(
                schedule_version_id=version.id,
                job_id=job.id,
                examiner_id=examiner.id if examiner else None,
                workstation_id=workstation.id if workstation else None,
                starts_at=start,
                ends_at=end,
            )
        )
    session.flush()
    return version


def _lab(session):
    lab = make_lab(session, "boardlab")
    early = make_examiner(session, lab, "E1", shifts=[(d, time(7), time(15)) for d in range(5)])
    late = make_examiner(session, lab, "E2", shifts=[(d, time(9), time(17)) for d in range(5)])
    ufed = make_workstation(session, lab, "U1")
    case = make_case(session, lab, "CR-2026-0001", priority="P1")
    acquire, process, review = phone_chain(session, make_device(session, case))
    other = make_case(session, lab, "CR-2026-0002", priority="P4")
    return lab, early, late, ufed, (acquire, process, review), other


def test_days_are_working_days_with_the_widest_shift_window_and_weekends_folded(session):
    lab, early, late, ufed, (acquire, process, review), _ = _lab(session)
    version = _published(
        session,
        lab,
        [
            (acquire, early, ufed, _at(FRIDAY, 9), _at(FRIDAY, 11)),
            # machine work from 16:00 Friday through the night: drawn to the window's end
            (process, None, ufed, _at(FRIDAY, 16), _at(FRIDAY, 20)),
            (
                review,
                late,
                None,
                _at(FRIDAY + timedelta(days=3), 10),
                _at(FRIDAY + timedelta(days=3), 12),
            ),
        ],
        frozen_until=_at(FRIDAY, 12),
    )
    board = boards.board(session, lab, version, FRIDAY, 2)
    assert [d.day for d in board.days] == [FRIDAY, FRIDAY + timedelta(days=3)]
    friday, monday = board.days
    assert (friday.start, friday.end) == (_at(FRIDAY, 7), _at(FRIDAY, 17))
    assert monday.folded_before == (FRIDAY + timedelta(days=1), FRIDAY + timedelta(days=2))
    assert friday.frozen_share == 50.0 and monday.frozen_share == 0.0

    lanes = {lane.ref: lane for lane in board.examiners}
    (bar,) = lanes["E1"].cells[0]
    assert (bar.left, bar.width) == (20.0, 10.0)  # 60 attended minutes from 09:00 of 07-17
    assert bar.case == "CR-2026-0001" and bar.priority == "P1" and bar.frozen
    assert board.short(bar.case) == bar.case  # one case: nothing shared to leave out
    (machine_acquire, machine_process) = board.workstations[0].cells[0]
    assert machine_acquire.machine and not machine_acquire.runs_on
    assert machine_process.runs_on and machine_process.left + machine_process.width == 100.0
    (later,) = lanes["E2"].cells[1]
    assert later.stage == "review" and not later.frozen
    assert lanes["E2"].exposure[1].planned == review.exposure_minutes
    assert lanes["E2"].planned_minutes[1] == review.attended_minutes


def test_an_examiners_board_has_only_its_own_lane(session):
    lab, early, late, ufed, (acquire, _, review), _ = _lab(session)
    version = _published(
        session,
        lab,
        [
            (acquire, early, ufed, _at(FRIDAY, 9), _at(FRIDAY, 11)),
            (review, late, None, _at(FRIDAY, 12), _at(FRIDAY, 14)),
        ],
    )
    board = boards.board(session, lab, version, FRIDAY, 1, examiner_id=late.id)
    assert [lane.ref for lane in board.examiners] == ["E2"]
    assert board.workstations == []
    assert [b.stage for b in board.examiners[0].cells[0]] == ["review"]
    assert board.days[0].start == _at(FRIDAY, 9)  # its own shift's window


def test_backlog_cases_and_chart_count_open_cases_until_their_expected_finish(session):
    lab, early, late, ufed, (acquire, process, review), _ = _lab(session)
    version = _published(
        session,
        lab,
        [
            (acquire, early, ufed, _at(FRIDAY, 9), _at(FRIDAY, 11)),
            (process, None, ufed, _at(FRIDAY, 11), _at(FRIDAY, 15)),
            (
                review,
                late,
                None,
                _at(FRIDAY + timedelta(days=10), 10),
                _at(FRIDAY + timedelta(days=10), 12),
            ),
        ],
    )
    now = _at(date(2026, 12, 1), 10)
    cases = reads.backlog_cases(session, lab, version, now)
    by_ref = {c.case: c for c in cases}
    assert by_ref["CR-2026-0001"].expected_finish == _at(FRIDAY + timedelta(days=10), 12)
    assert by_ref["CR-2026-0001"].sla in ("missed", "at_risk")  # P1: 24 h, received days ago
    chart = reads.backlog_chart(lab, cases, now, weeks=3)
    assert chart.counts["P1"] == [1, 1, 1, 0]  # open until Mon 14 Dec, cleared after
    assert chart.weeks[0] == date(2026, 12, 1)


def test_exposure_grid_counts_planned_logged_and_breaches(session):
    lab, early, late, ufed, (_, _, review), _ = _lab(session)
    version = _published(session, lab, [(review, late, None, _at(FRIDAY, 10), _at(FRIDAY, 12))])
    session.add(ExposureLog(examiner_id=late.id, day=FRIDAY, minutes=200, severity=1))
    session.flush()
    days, rows = reads.exposure_grid(session, lab, version, _at(FRIDAY, 8))
    assert days[0] == date(2026, 11, 30) and len(days) == 14
    row = next(r for r in rows if r.examiner == "E2")
    friday = row.days[4]
    assert (friday.planned, friday.logged) == (review.exposure_minutes, 200)
    assert friday.over and friday.heat == 4  # 100 + 200 > 240
    assert row.breaches == 1
    assert next(r for r in rows if r.examiner == "E1").breaches == 0


def test_bars_leave_out_only_what_every_case_reference_shares():
    assert boards._common_prefix(["CR-2026-0401", "CR-2026-0433", "CR-2026-0401"]) == "CR-2026-"
    assert boards._common_prefix(["CR-2026-0401", "CR-2027-0001"]) == "CR-"
    assert boards._common_prefix(["A1", "B1"]) == ""
    assert boards._common_prefix(["CR-1", "CR-1"]) == ""
