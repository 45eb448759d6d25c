"""No stored record fails a lab: an unplannable one is left out and named, the rest is solved.

Every bad record is written straight into the database (SQL, past the API's validation), as a
hand edit or an old import would leave it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from lab_builders import MONDAY, make_lab, small_lab
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models import Case, Device, Examiner, Job, Lab, LicencePool, UnscheduledJob, Workstation
from scheduler.core.plan import REASONS, UNPLANNABLE_RECORD
from scheduler.core.verify import verify
from scheduler.planning.engine import solve_snapshot
from scheduler.planning.loader import load_snapshot
from scheduler.planning.publish import publish
from scheduler.planning.store import store_plan
from scheduler.services.integrity import flush

BIG = 2**31 - 1  # the largest INTEGER: past the contract's bound on minutes (10**9)


def _case(session: Session, lab: Lab, ref: str) -> Case:
    query = select(Case).where(Case.lab_id == lab.id, Case.external_ref == ref)
    return session.scalars(query).one()


def _job(session: Session, lab: Lab, case_ref: str, stage: str) -> Job:
    return session.scalars(
        select(Job)
        .join(Device, Job.device_id == Device.id)
        .join(Case, Device.case_id == Case.id)
        .where(Case.lab_id == lab.id, Case.external_ref == case_ref, Job.stage == stage)
    ).one()


def _sql(session: Session, statement: str, **params: object) -> None:
    flush(session)
    session.execute(text(statement), params)
    session.expire_all()


# ---- the forms of bad record: each stores one and returns the words that must name it ------


def received_far_future(session: Session, lab: Lab) -> list[str]:
    """The instant of the report: 9999-12-31 23:59:59 +14:00 (accepted by the API once)."""
    late = datetime.fromisoformat("9999-12-31T23:59:59+14:00").astimezone(UTC)
    _sql(session, 'UPDATE "case" SET received_at = :at WHERE id = :id', at=late,
         id=_case(session, lab, "C1").id)  # fmt: skip
    return ["case C1", "received_at"]


def deadline_past_year_9999(session: Session, lab: Lab) -> list[str]:
    """23:59:59 -12:00 on 31 December 9999 is in year 10000 UTC: no datetime can hold it."""
    case_id = _case(session, lab, "C2").id
    if session.get_bind().dialect.name == "sqlite":
        stored = "10000-01-01 11:59:59.000000"  # what a hand edit leaves in the text column
    else:
        stored = "9999-12-31T23:59:59-12:00"
    _sql(session, 'UPDATE "case" SET legal_deadline_at = :at WHERE id = :id', at=stored,
         id=case_id)  # fmt: skip
    return ["case C2", "legal_deadline_at"]


def device_arrived_in_year_1(session: Session, lab: Lab) -> list[str]:
    device = session.scalars(
        select(Device).where(Device.case_id == _case(session, lab, "C3").id)
    ).one()
    _sql(session, "UPDATE device SET arrived_at = :at WHERE id = :id",
         at=datetime(1, 1, 1, tzinfo=UTC), id=device.id)  # fmt: skip
    return ["device C3/D1", "arrived_at"]


def pool_of_another_lab(session: Session, lab: Lab) -> list[str]:
    """A licence pool reference that no longer resolves in the job's lab."""
    other = make_lab(session, f"{lab.code}-other")
    pool = LicencePool(lab_id=other.id, name="axiom", capacity=1)
    session.add(pool)
    job = _job(session, lab, "C4", "process")
    _sql(session, "INSERT INTO job_licence_pool (job_id, pool_id) VALUES (:job, :pool)",
         job=job.id, pool=pool.id)  # fmt: skip
    return ["C4/D1/process", "licence pool"]


def machine_minutes_past_the_contract(session: Session, lab: Lab) -> list[str]:
    job = _job(session, lab, "C2", "acquire")
    ws = session.scalars(select(Workstation).where(Workstation.lab_id == lab.id)).first()
    assert ws is not None
    _sql(session, "INSERT INTO job_workstation_minutes (job_id, workstation_id, machine_minutes) "
         "VALUES (:job, :ws, :minutes)", job=job.id, ws=ws.id, minutes=BIG)  # fmt: skip
    return ["C2/D1/acquire", "machine_by_workstation"]


def examiner_cap_past_the_contract(session: Session, lab: Lab) -> list[str]:
    examiner = session.scalars(
        select(Examiner).where(Examiner.lab_id == lab.id, Examiner.external_ref == "E2")
    ).one()
    _sql(session, "UPDATE examiner SET daily_cap_minutes = :cap WHERE id = :id", cap=BIG,
         id=examiner.id)  # fmt: skip
    return ["examiner E2", "daily_cap"]


def predecessors_in_a_cycle(session: Session, lab: Lab) -> list[str]:
    """acquire -> process -> review -> acquire: no order can satisfy it."""
    acquire, review = _job(session, lab, "C3", "acquire"), _job(session, lab, "C3", "review")
    _sql(session, "INSERT INTO job_predecessor (job_id, predecessor_id) VALUES (:job, :pred)",
         job=acquire.id, pred=review.id)  # fmt: skip
    return ["C3/D1/", "cycle"]


Form = Callable[[Session, Lab], list[str]]
FIVE: tuple[Form, ...] = (
    received_far_future,
    device_arrived_in_year_1,
    pool_of_another_lab,
    machine_minutes_past_the_contract,
    examiner_cap_past_the_contract,
)
FORMS: tuple[Form, ...] = (*FIVE, deadline_past_year_9999, predecessors_in_a_cycle)


def _names(idmap) -> str:
    return "\n".join(idmap.unplannable)


def _solve_store_publish(session: Session, lab: Lab, *, policy: str, time_limit: float):
    snapshot, idmap = load_snapshot(session, lab, MONDAY)
    plan = solve_snapshot(snapshot, time_limit=time_limit, policy=policy)
    assert verify(snapshot, plan) == []
    version = store_plan(session, lab, None, snapshot, plan, idmap)
    publish(session, version, actor="test")
    return snapshot, plan, idmap, version


@pytest.mark.parametrize("form", FORMS, ids=lambda form: form.__name__)
def test_one_bad_record_is_left_out_named_and_the_rest_of_the_lab_is_planned(session, form):
    lab = small_lab(session, f"u-{form.__name__[:40]}", cases=4)
    words = form(session, lab)
    snapshot, plan, idmap, version = _solve_store_publish(session, lab, policy="fifo", time_limit=2)
    names = _names(idmap)
    assert all(word in names for word in words), names
    assert plan.assignments, "the rest of the lab is planned"
    assert version.is_current
    assert version.kpis["unplannable"] == idmap.unplannable
    if form is examiner_cap_past_the_contract:
        assert [e.id for e in snapshot.examiners] == ["E1"]
        assert any("examiner E2" in w for w in version.kpis["warnings"])
        assert {a.examiner for a in plan.assignments} <= {"E1", None}
    else:
        rows = session.scalars(
            select(UnscheduledJob).where(
                UnscheduledJob.schedule_version_id == version.id,
                UnscheduledJob.reason == UNPLANNABLE_RECORD,
            )
        ).all()
        assert rows and all(word in rows[0].detail for word in words[1:]), rows
        assert version.kpis["unscheduled_by_reason"][UNPLANNABLE_RECORD] == len(rows)
        left_out = {row.job_id for row in rows}
        assert not left_out & {idmap.jobs[job.id] for job in snapshot.jobs}


def test_all_five_forms_in_one_lab_solve_with_cpsat_and_each_is_named(session):
    lab = small_lab(session, "u-five", cases=5)
    expected = [form(session, lab) for form in FIVE]
    snapshot, plan, idmap, version = _solve_store_publish(
        session, lab, policy="cpsat", time_limit=3
    )
    names = version.kpis["unplannable"]
    assert len(names) == 5, names
    for words in expected:
        assert any(all(word in name for word in words) for name in names), (words, names)
    assert plan.status in ("optimal", "feasible")
    assert plan.assignments and version.is_current
    assert "C5" in {job.case for job in snapshot.jobs}  # the untouched case is planned


def test_a_job_pinned_to_an_unplannable_examiner_is_planned_without_the_pin(session):
    lab = small_lab(session, "u-pin", cases=2)
    job = _job(session, lab, "C2", "acquire")
    e2 = session.scalars(
        select(Examiner).where(Examiner.lab_id == lab.id, Examiner.external_ref == "E2")
    ).one()
    u1 = session.scalars(select(Workstation).where(Workstation.lab_id == lab.id)).one()
    job.pin_examiner_id, job.pin_workstation_id = e2.id, u1.id
    job.pin_start_at = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    examiner_cap_past_the_contract(session, lab)
    snapshot, plan, idmap, _ = _solve_store_publish(session, lab, policy="fifo", time_limit=2)
    planned = {j.id: j for j in snapshot.jobs}
    assert planned["C2/D1/acquire"].pin is None
    assert any("C2/D1/acquire" in w and "examiner E2" in w for w in idmap.warnings)
    assert "C2/D1/acquire" in {a.job for a in plan.assignments}


def test_an_infinite_instant_in_postgresql_is_named_not_a_failed_query(session):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("only PostgreSQL stores 'infinity'")
    lab = small_lab(session, "u-inf", cases=2)
    _sql(session, "UPDATE device SET arrived_at = 'infinity' WHERE case_id = :id",
         id=_case(session, lab, "C1").id)  # fmt: skip
    snapshot, _, idmap, _ = _solve_store_publish(session, lab, policy="fifo", time_limit=2)
    assert "device C1/D1: arrived_at 'infinity'" in _names(idmap)
    assert {job.case for job in snapshot.jobs} == {"C2"}


def test_unplannable_record_is_a_documented_reason():
    assert UNPLANNABLE_RECORD == "unplannable_record" and UNPLANNABLE_RECORD in REASONS
