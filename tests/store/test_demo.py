"""The demo lab: realistic, and seeding it twice creates nothing twice."""

from __future__ import annotations

from sqlalchemy import func, select

from models import AuditEvent, Examiner, Job, Workstation
from scheduler.demo import seed_demo


def test_demo_is_realistic_and_idempotent(session):
    first = seed_demo(session)
    assert first.created
    assert 8 <= first.examiners <= 12
    assert first.cases == 40
    audit_rows = session.scalar(select(func.count()).select_from(AuditEvent))
    second = seed_demo(session)
    assert not second.created
    assert (second.examiners, second.cases, second.devices, second.jobs) == (
        first.examiners,
        first.cases,
        first.devices,
        first.jobs,
    )
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_rows

    graykey = session.scalar(select(Workstation).where(Workstation.external_ref == "GK1"))
    assert graykey.capacity == 2
    policies = {e.external_ref: e for e in session.scalars(select(Examiner))}
    assert any(e.max_severity < 3 and e.daily_cap_minutes == 240 for e in policies.values())
    assert any((e.daily_cap_minutes or 0) < 240 for e in policies.values())
    stages = set(session.scalars(select(Job.stage).distinct()))
    assert stages == {"unlock", "acquire", "process", "review", "report"}
