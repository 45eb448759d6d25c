"""The job store (scheduler/services/job_store.py) owns all of a job's child tables: what the
single routes write, the store reads back, by id and as clients name it."""

from __future__ import annotations

from datetime import UTC, datetime

from models import Base, Job
from scheduler.services import casework, job_store, labs, resources

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_the_store_names_every_child_table_of_a_job():
    job_table = Job.__table__
    children = {
        table.name
        for table in Base.metadata.tables.values()
        if any(
            fk.column.table is job_table and fk.ondelete == "CASCADE" for fk in table.foreign_keys
        )
        and set(table.primary_key.columns.keys()) >= {"job_id"}
        and table.name.startswith("job_")
    }
    assert children == {t.model.__tablename__ for t in job_store.TABLES}
    for table in job_store.TABLES:
        assert table.columns[0] == "job_id"
        assert set(table.columns) == set(table.model.__table__.columns.keys())


def test_what_upsert_job_writes_the_store_reads_back(session):
    lab = labs.create_lab(
        session,
        actor="t",
        code="js",
        name="JS",
        timezone="UTC",
        terms={"skills": ["mobile", "review"], "capabilities": ["ufed"], "stages": ["acquire"]},
    )
    examiner = resources.upsert_examiner(
        session, lab, actor="t", external_ref="E1", skills=["mobile"]
    )
    workstation = resources.upsert_workstation(
        session, lab, actor="t", external_ref="W1", name="W1", capabilities=["ufed"]
    )
    pool = resources.upsert_pool(session, lab, actor="t", name="lic", capacity=1)
    case = casework.upsert_case(
        session, lab, actor="t", external_ref="C", priority="P2", received_at=NOW
    )
    device = casework.upsert_device(
        session, case, actor="t", external_ref="D", kind="phone", arrived_at=NOW
    )
    first = casework.upsert_job(session, device, actor="t", external_ref="a", stage="acquire")
    job = casework.upsert_job(
        session,
        device,
        actor="t",
        external_ref="b",
        stage="acquire",
        skills=["review", "mobile", "mobile"],
        capabilities=["ufed"],
        pools=["lic"],
        after=[first],
        allowed_examiners=["E1"],
        workstation_minutes={"W1": 90},
    )

    sets = job_store.read(session, [first.id, job.id])
    assert first.id not in sets  # a job without any row has none
    assert sets[job.id] == job_store.Sets(
        skills=["mobile", "review"],
        capabilities=["ufed"],
        pool_ids=[pool.id],
        examiner_ids=[examiner.id],
        workstation_minutes={workstation.id: 90},
        predecessor_ids=[first.id],
    )
    shown = job_store.shown(session, [first, job])
    assert (shown[first.id].case, shown[first.id].device, shown[first.id].after) == ("C", "D", [])
    view = shown[job.id]
    assert (view.skills, view.pools, view.allowed_examiners) == (
        ["mobile", "review"],
        ["lic"],
        ["E1"],
    )
    assert (view.workstation_minutes, view.after) == ({"W1": 90}, ["D/a"])

    casework.upsert_job(session, device, actor="t", external_ref="b", stage="acquire")
    assert job_store.read(session, [job.id]) == {}  # a replacement replaces every set
