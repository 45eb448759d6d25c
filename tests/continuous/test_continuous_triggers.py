"""Escalations, triage flags, links, absences and urgent imports queue repair runs."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
from continuous_support import ACTOR, build_lab, queued_runs, solve_and_publish
from sqlalchemy import select

from models import AuditEvent, PriorityLevel
from models.base import utcnow
from scheduler.db import session_scope
from scheduler.services import casework, resources
from scheduler.services.labs import get_lab
from scheduler.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def lab(shared_engine, lab_code):
    with session_scope(shared_engine) as session:
        build_lab(session, lab_code, cases=3)
    assert solve_and_publish(shared_engine, lab_code, policy="fifo") == "succeeded"
    return lab_code


def _level(session, case) -> str:
    return session.get(PriorityLevel, case.priority_level_id).code


def test_escalation_queues_one_repair_run_with_the_new_levels_auto_publish(shared_engine, lab):
    with session_scope(shared_engine) as session:
        row = get_lab(session, lab)
        c1 = casework.get_case(session, row, "C1")
        casework.escalate_case(session, row, c1, "P3", ACTOR)
        (run,) = queued_runs(session, row)
        assert run.mode == "repair" and run.auto_publish is False  # P3 does not auto-publish
        assert "C1" in (run.reason or "")
        c2 = casework.get_case(session, row, "C2")
        casework.escalate_case(session, row, c2, "P1", ACTOR)
        (again,) = queued_runs(session, row)  # reused, not a second run
        assert again.id == run.id and again.auto_publish is True
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.lab_id == row.id).order_by(AuditEvent.id)
        ).all()
        assert actions[-4:] == [
            "solve_run.queue",
            "case.escalate",
            "solve_run.auto_publish",
            "case.escalate",
        ]


def test_a_lab_without_a_published_schedule_gets_no_repair(shared_engine, lab_code):
    with session_scope(shared_engine) as session:
        row = build_lab(session, lab_code, cases=1)
        casework.escalate_case(session, row, casework.get_case(session, row, "C1"), "P1", ACTOR)
        assert queued_runs(session, row) == []


def test_a_link_raises_the_less_urgent_case_to_the_other_ones_level(shared_engine, lab):
    with session_scope(shared_engine) as session:
        row = get_lab(session, lab)
        c1, c2 = (casework.get_case(session, row, ref) for ref in ("C1", "C2"))
        casework.escalate_case(session, row, c1, "P2", ACTOR)
        casework.link_cases(session, c2, c1, actor=ACTOR)
        assert (_level(session, c1), _level(session, c2)) == ("P2", "P2")
        (run,) = queued_runs(session, row)
        assert run.auto_publish is True


def test_triage_flags_raise_one_level_once_per_kind_never_above_the_top(shared_engine, lab):
    with session_scope(shared_engine) as session:
        row = get_lab(session, lab)
        case = casework.get_case(session, row, "C3")  # P4
        casework.add_flag(session, case, actor=ACTOR, kind="manual")
        assert _level(session, case) == "P4"
        casework.add_flag(session, case, actor=ACTOR, kind="hash_match")
        assert _level(session, case) == "P3"
        casework.add_flag(session, case, actor=ACTOR, kind="hash_match")  # same signal again
        assert _level(session, case) == "P3"
        (run,) = queued_runs(session, row)
        assert run.auto_publish is False
        casework.add_flag(session, case, actor=ACTOR, kind="classifier")
        casework.add_flag(session, case, actor=ACTOR, kind="linked_report")
        assert _level(session, case) == "P1"
        assert queued_runs(session, row)[0].auto_publish is True
        casework.escalate_case(session, row, casework.get_case(session, row, "C1"), "P1", ACTOR)
        c1 = casework.get_case(session, row, "C1")
        casework.add_flag(session, c1, actor=ACTOR, kind="classifier")
        assert _level(session, c1) == "P1"  # already at the top


def test_a_closed_case_escalates_without_a_repair_run(shared_engine, lab):
    with session_scope(shared_engine) as session:
        row = get_lab(session, lab)
        case = casework.get_case(session, row, "C1")
        case.status = "closed"
        casework.escalate_case(session, row, case, "P1", ACTOR)
        assert queued_runs(session, row) == []


def test_an_absence_from_now_queues_an_auto_published_repair_a_later_one_does_not(
    shared_engine, lab
):
    now = utcnow()
    with session_scope(shared_engine) as session:
        row = get_lab(session, lab)
        examiner = resources.get_examiner(session, row, "E1")
        resources.add_absence(
            session,
            examiner,
            actor=ACTOR,
            kind="leave",
            starts_at=now + timedelta(days=40),
            ends_at=now + timedelta(days=41),
        )
        resources.add_absence(
            session,
            examiner,
            actor=ACTOR,
            kind="leave",
            starts_at=now - timedelta(days=3),
            ends_at=now - timedelta(days=2),
        )
        assert queued_runs(session, row) == []
        resources.add_absence(
            session,
            examiner,
            actor=ACTOR,
            kind="sick",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=20),
        )
        (run,) = queued_runs(session, row)
        assert run.mode == "repair" and run.auto_publish is True
        assert "E1" in (run.reason or "")


def test_escalation_and_absence_through_the_api_queue_repairs(db_url, shared_engine, lab):
    from api.app import create_app
    from scheduler.services import keys

    with session_scope(shared_engine) as session:
        token = keys.create_key(
            session, actor=ACTOR, role="supervisor", name="t", lab=get_lab(session, lab)
        ).token
    app = create_app(Settings(database_url=db_url, environment="test", embedded_worker=False))
    headers = {"X-API-Key": token}
    with TestClient(app) as client:
        r = client.post(f"/labs/{lab}/cases/C1:escalate", json={"priority": "P2"}, headers=headers)
        assert r.status_code == 200, r.text
        runs = client.get(f"/labs/{lab}/solve-runs", headers=headers).json()["items"]
        queued = [x for x in runs if x["status"] == "queued"]
        assert [(x["mode"], x["auto_publish"]) for x in queued] == [("repair", True)]
        now = utcnow()
        r = client.post(
            f"/labs/{lab}/examiners/E2/absences",
            json={
                "kind": "sick",
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=8)).isoformat(),
            },
            headers=headers,
        )
        assert r.status_code == 201, r.text
        runs = client.get(f"/labs/{lab}/solve-runs", headers=headers).json()["items"]
        assert len([x for x in runs if x["status"] == "queued"]) == 1  # still one
        imported = client.post(
            f"/labs/{lab}/cases:import",
            json={
                "cases": [
                    {"external_ref": "NEW-P1", "priority": "P1", "received_at": now.isoformat()}
                ]
            },
            headers=headers,
        )
        assert imported.status_code == 200, imported.text
        runs = client.get(f"/labs/{lab}/solve-runs", headers=headers).json()["items"]
        assert len([x for x in runs if x["status"] == "queued"]) == 1
    app.state.engine.dispose()


def test_a_new_urgent_case_by_import_queues_a_repair(shared_engine, lab):
    from scheduler.services.case_import import import_cases

    with session_scope(shared_engine) as session:
        row = get_lab(session, lab)
        now = utcnow()
        import_cases(
            session,
            row,
            [{"external_ref": "P4-new", "priority": "P4", "received_at": now}],
            actor=ACTOR,
        )
        assert queued_runs(session, row) == []
        import_cases(
            session,
            row,
            [{"external_ref": "P1-new", "priority": "P1", "received_at": now}],
            actor=ACTOR,
        )
        (run,) = queued_runs(session, row)
        assert run.mode == "repair" and run.auto_publish is True


def test_a_level_raised_by_import_is_an_escalation(shared_engine, lab):
    """A case-management system that pushes a more urgent level through the bulk import gets
    the same repair as a PUT; lowering a level or raising a closed case queues nothing."""
    from scheduler.services.case_import import import_cases

    with session_scope(shared_engine) as session:
        row = get_lab(session, lab)
        received = {
            ref: casework.get_case(session, row, ref).received_at for ref in ("C1", "C2", "C3")
        }

        def push(ref: str, priority: str, status: str = "open") -> None:
            item = {"external_ref": ref, "priority": priority, "received_at": received[ref]}
            import_cases(session, row, [{**item, "status": status}], actor=ACTOR)

        push("C1", "P5")  # lowered: no escalation
        push("C3", "P1", status="closed")  # not open: none of its work is planned
        assert queued_runs(session, row) == []
        push("C2", "P3")
        (run,) = queued_runs(session, row)
        assert run.mode == "repair" and run.auto_publish is False  # P3 does not auto-publish
        assert run.reason == "escalation of case C2 to P3 (import)"
        push("C1", "P2")
        (again,) = queued_runs(session, row)  # reused, switched to auto-publish
        assert again.id == run.id and again.auto_publish is True
        assert _level(session, casework.get_case(session, row, "C1")) == "P2"
