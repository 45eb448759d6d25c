"""Domain services: upserts by reference are idempotent and every mutation is audited."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy import func, select

from models import AuditEvent, Case, Job
from scheduler.errors import Conflict, Invalid
from scheduler.services import casework, labs, resources, vocabulary

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_case_upsert_twice_creates_one_case_and_one_audit_event(session):
    lab = labs.create_lab(session, actor="t", code="a", name="A", timezone="UTC")
    for _ in range(2):
        casework.upsert_case(
            session, lab, actor="int", external_ref="C-1", priority="P4", received_at=NOW
        )
    assert _count(session, Case, Case.lab_id == lab.id) == 1
    assert (
        _count(session, AuditEvent, AuditEvent.action == "case.upsert", AuditEvent.lab_id == lab.id)
        == 1
    )


def test_escalating_a_case_is_audited_with_before_and_after(session):
    lab = labs.create_lab(session, actor="t", code="b", name="B", timezone="UTC")
    casework.upsert_case(
        session, lab, actor="int", external_ref="C-1", priority="P4", received_at=NOW
    )
    casework.upsert_case(
        session, lab, actor="sup", external_ref="C-1", priority="P1", received_at=NOW
    )
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.lab_id == lab.id, AuditEvent.action == "case.upsert")
        .order_by(AuditEvent.id)
    ).all()
    assert [e.actor for e in events] == ["int", "sup"]
    assert events[1].before_digest == events[0].after_digest
    assert events[1].after_digest != events[1].before_digest


def test_examiner_shifts_replace_the_pattern(session):
    lab = labs.create_lab(session, actor="t", code="c", name="C", timezone="UTC")
    examiner = resources.upsert_examiner(
        session,
        lab,
        actor="t",
        external_ref="E1",
        skills=["review", "mobile"],
        shifts=[(0, time(8), time(16))],
    )
    resources.upsert_examiner(
        session,
        lab,
        actor="t",
        external_ref="E1",
        shifts=[(1, time(9), time(17)), (2, time(9), time(17))],
    )
    session.refresh(examiner)
    assert [(s.weekday, s.starts) for s in examiner.shifts] == [(1, time(9)), (2, time(9))]
    assert examiner.skill_names == ["mobile", "review"]


def test_job_status_moves_are_checked(session):
    lab = labs.create_lab(session, actor="t", code="d", name="D", timezone="UTC")
    case = casework.upsert_case(
        session, lab, actor="t", external_ref="C", priority="P2", received_at=NOW
    )
    device = casework.upsert_device(
        session, case, actor="t", external_ref="D", kind="storage", arrived_at=NOW
    )
    job = casework.upsert_job(
        session, device, actor="t", external_ref="acquire", stage="acquire", attended_minutes=30
    )
    casework.set_job_status(session, job, actor="t", status="done")
    with pytest.raises(Conflict, match="cannot go from done to pending"):
        casework.set_job_status(session, job, actor="t", status="pending")
    assert _count(session, Job, Job.status == "done", Job.lab_id == lab.id) == 1


def test_the_services_enforce_the_vocabulary_whoever_calls_them(session):
    """The demo, the seeders and the API all write through these: none can skip the rule."""
    lab = labs.create_lab(
        session,
        actor="t",
        code="v",
        name="V",
        timezone="UTC",
        terms={"skills": ["mobile"], "capabilities": ["ufed"], "stages": ["acquire"]},
    )
    assert vocabulary.vocabulary_of(session, lab).as_lists() == {
        "skills": ["mobile"],
        "capabilities": ["ufed"],
        "stages": ["acquire"],
    }
    with pytest.raises(Invalid) as refused:
        resources.upsert_examiner(
            session, lab, actor="t", external_ref="E1", skills=["mobile", " review ", "x"]
        )
    assert [(e["field"], e["type"]) for e in refused.value.extra["errors"]] == [
        ("skills[1]", "unknown_term"),
        ("skills[2]", "unknown_term"),
    ]
    assert "skill 'review' is not in the vocabulary of lab 'v'" in refused.value.detail
    case = casework.upsert_case(
        session, lab, actor="t", external_ref="C-1", priority="P4", received_at=NOW
    )
    device = casework.upsert_device(
        session, case, actor="t", external_ref="D1", kind="phone", arrived_at=NOW
    )
    with pytest.raises(Invalid, match=r"^stage: stage 'review' is not in the vocabulary"):
        casework.upsert_job(session, device, actor="t", external_ref="r", stage="review")
    assert _count(session, Job, Job.lab_id == lab.id) == 0


def test_a_new_lab_with_a_stage_labq_does_not_plan_is_refused_before_it_is_made(session):
    with pytest.raises(Invalid, match="'triage' is not a stage labq plans"):
        labs.create_lab(
            session, actor="t", code="w", name="W", timezone="UTC", terms={"stages": ["triage"]}
        )
    assert labs.find_lab(session, "w") is None
