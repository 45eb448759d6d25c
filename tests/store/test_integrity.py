"""Integrity lives in the database and surfaces as typed domain errors, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from models import Device, Job, LabTerm
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.services import casework, labs, resources
from scheduler.services.integrity import flush

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def lab(session):
    return labs.create_lab(
        session, actor="test", code="north", name="North", timezone="Europe/London"
    )


@pytest.fixture
def device(session, lab):
    case = casework.upsert_case(
        session, lab, actor="test", external_ref="C-1", priority="P2", received_at=NOW
    )
    return casework.upsert_device(
        session, case, actor="test", external_ref="D1", kind="phone", arrived_at=NOW
    )


def test_duplicate_external_ref_is_a_conflict(session, lab, device):
    session.add(Device(case_id=device.case_id, external_ref="D1", kind="phone", arrived_at=NOW))
    with pytest.raises(Conflict, match="already exists"):
        flush(session)


def test_duplicate_lab_code_is_a_conflict(session, lab):
    with pytest.raises(Conflict):
        labs.create_lab(session, actor="test", code="north", name="Again", timezone="UTC")


def test_negative_duration_is_invalid(session, device):
    with pytest.raises(Invalid, match="ck_job_attended"):
        casework.upsert_job(
            session,
            device,
            actor="test",
            external_ref="acquire",
            stage="acquire",
            attended_minutes=-5,
        )


def test_severity_four_is_invalid(session, device):
    with pytest.raises(Invalid, match="ck_job_severity_range"):
        casework.upsert_job(
            session,
            device,
            actor="test",
            external_ref="review-1",
            stage="review",
            attended_minutes=60,
            exposure_minutes=50,
            severity=4,
        )


def test_dangling_foreign_key_is_not_found(session, lab):
    session.add(Job(lab_id=lab.id, device_id=987654, external_ref="x", stage="acquire"))
    with pytest.raises(NotFound, match="does not exist"):
        flush(session)


def test_unknown_priority_level_is_not_found(session, lab):
    with pytest.raises(NotFound, match="priority level 'P9'"):
        casework.upsert_case(
            session, lab, actor="test", external_ref="C-2", priority="P9", received_at=NOW
        )


def test_capacity_below_one_is_invalid(session, lab):
    with pytest.raises(Invalid, match="ck_workstation_capacity_range"):
        resources.upsert_workstation(session, lab, actor="test", external_ref="GK1", capacity=0)


def test_unknown_timezone_is_invalid(session):
    with pytest.raises(Invalid, match="not an IANA timezone"):
        labs.create_lab(session, actor="test", code="x", name="X", timezone="Mars/Olympus")


def test_unknown_stage_is_invalid(session, lab, device):
    with pytest.raises(Invalid, match="'guess' is not a stage labq plans"):
        casework.upsert_job(session, device, actor="test", external_ref="j", stage="guess")
    session.add(Job(lab_id=lab.id, device_id=device.id, external_ref="j", stage="guess"))
    with pytest.raises(Invalid, match="ck_job_stage_valid"):
        flush(session)


def test_a_lab_term_that_is_not_a_planned_stage_is_invalid(session, lab):
    session.add(LabTerm(lab_id=lab.id, kind="stage", term="guess"))
    with pytest.raises(Invalid, match="ck_lab_term_stage_planned"):
        flush(session)


def test_predecessor_cycle_is_refused(session, device):
    first = casework.upsert_job(
        session, device, actor="test", external_ref="a", stage="acquire", attended_minutes=30
    )
    second = casework.upsert_job(
        session,
        device,
        actor="test",
        external_ref="b",
        stage="process",
        machine_minutes=60,
        after=[first],
    )
    with pytest.raises(Invalid, match="cycle"):
        casework.upsert_job(
            session,
            device,
            actor="test",
            external_ref="a",
            stage="acquire",
            attended_minutes=30,
            after=[second],
        )


def test_foreign_keys_are_enforced_at_the_database(session, backend):
    # Independent of the ORM: the raw connection refuses a dangling reference too.
    with pytest.raises(Exception, match="(?i)foreign key"):
        session.execute(
            text(
                "INSERT INTO device (case_id, external_ref, kind, locked, arrived_at, created_at, "
                "updated_at) VALUES (424242, 'D9', 'phone', false, :t, :t, :t)"
            ),
            {"t": NOW},
        )
