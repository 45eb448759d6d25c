"""The schema is made by migrations only: up from empty, down to base, up again, no drift."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from models import (
    Base,
    Case,
    Device,
    Examiner,
    ExaminerSkill,
    JobCapability,
    JobSkill,
    Lab,
    LabTerm,
    PriorityLevel,
    Workstation,
    WorkstationCapability,
)
from models.casework import STAGES
from scheduler.db import make_engine
from scheduler.migrate import downgrade, upgrade

VOCABULARY_REVISION_BEFORE = "b4e2c7a9d1f3"  # the revision before lab vocabularies


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_up_down_up_leaves_no_drift(backend, fresh_databases):
    url = fresh_databases.url(backend)
    upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)
    downgrade(url, "base")
    assert _tables(url) == set()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrading_seeds_each_labs_vocabulary_with_the_terms_its_data_uses(
    backend, fresh_databases
):
    """A lab's stored skills, capabilities and stages stay valid after the vocabulary arrives."""
    url = fresh_databases.url(backend)
    upgrade(url, VOCABULARY_REVISION_BEFORE)
    engine = make_engine(url)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with engine.begin() as connection:  # the lab table as that revision has it (no later columns)
        for code in ("north", "south", "empty"):
            connection.execute(
                text(
                    "INSERT INTO lab (code, name, timezone, planning_horizon_days, slot_minutes, "
                    "frozen_working_days, solve_time_limit_seconds, weight_tardiness, "
                    "weight_change, weight_balance, weight_continuity, created_at, updated_at) "
                    "VALUES (:code, :code, 'UTC', 10, 15, 1, 60, 1, 10000, 5, 2, :at, :at)"
                ),
                {"code": code, "at": at},
            )
        lab_id = dict(connection.execute(text("SELECT code, id FROM lab")).tuples().all())
    with Session(engine) as session, session.begin():
        level = PriorityLevel(lab_id=lab_id["north"], code="P1", name="P1", rank=1, weight=1,
                              target_start_hours=24)  # fmt: skip
        examiner = Examiner(lab_id=lab_id["north"], external_ref="E1", display_name="E1")
        examiner.skills = [ExaminerSkill(skill="mobile"), ExaminerSkill(skill="chip_off")]
        box = Workstation(lab_id=lab_id["north"], external_ref="W1", name="W1")
        box.capabilities = [WorkstationCapability(capability="graykey")]
        other = Examiner(lab_id=lab_id["south"], external_ref="E1", display_name="E1")
        other.skills = [ExaminerSkill(skill="cloud")]
        session.add_all([level, examiner, box, other])
        session.flush()
        case = Case(
            lab_id=lab_id["north"], external_ref="C1", priority_level_id=level.id, received_at=at
        )
        session.add(case)
        session.flush()
        device = Device(case_id=case.id, external_ref="D1", kind="phone", arrived_at=at)
        session.add(device)
        session.flush()
        # the job table as that revision has it (no later columns)
        job_id = session.execute(
            text(
                "INSERT INTO job (lab_id, device_id, external_ref, stage, status, "
                "attended_minutes, machine_minutes, exposure_minutes, severity, created_at, "
                "updated_at) "
                "VALUES (:lab, :device, 'J1', 'unlock', 'pending', 0, 0, 0, 0, :at, :at) "
                "RETURNING id"
            ),
            {"lab": lab_id["north"], "device": device.id, "at": at},
        ).scalar_one()
        session.add_all(
            [
                JobSkill(job_id=job_id, skill="mobile"),
                JobSkill(job_id=job_id, skill="unlock"),
                JobCapability(job_id=job_id, capability="ufed"),
            ]
        )
    upgrade(url)
    with Session(engine) as session:
        terms = {
            (code, kind, term)
            for code, kind, term in session.execute(
                select(Lab.code, LabTerm.kind, LabTerm.term).join(Lab, Lab.id == LabTerm.lab_id)
            )
        }
    engine.dispose()
    stages = {(code, "stage", s) for code in ("north", "south", "empty") for s in STAGES}
    assert terms - stages == {
        ("north", "skill", "chip_off"),
        ("north", "skill", "mobile"),
        ("north", "skill", "unlock"),
        ("north", "capability", "graykey"),
        ("north", "capability", "ufed"),
        ("south", "skill", "cloud"),
    }
    assert stages <= terms
