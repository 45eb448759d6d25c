"""The bulk case import: idempotent by reference, one transaction, errors that name the item."""

from __future__ import annotations

import copy

import pytest
from api_support import case_payload, make_lab
from sqlalchemy import func, select

from models import AuditEvent, Case, Device, Job, JobPredecessor

LAB = "imports"


@pytest.fixture(scope="module")
def lab(client, admin):
    make_lab(client, admin, LAB)
    for ref, skills in (("E1", ["mobile", "review"]), ("E2", ["review"])):
        response = client.put(
            f"/labs/{LAB}/examiners/{ref}", json={"skills": skills}, headers=admin
        )
        assert response.status_code == 201
    assert client.put(f"/labs/{LAB}/workstations/W1", json={}, headers=admin).status_code == 201
    pool = client.put(f"/labs/{LAB}/licence-pools/axiom", json={"capacity": 2}, headers=admin)
    assert pool.status_code == 200
    return LAB


@pytest.fixture
def integration(keymaker, lab):
    return keymaker.headers("integration", lab=lab)


def counts(app, prefix: str) -> dict[str, int]:
    """Rows under cases whose reference starts with ``prefix``."""
    with app.state.engine.connect() as conn:
        case_ids = select(Case.id).where(Case.external_ref.like(f"{prefix}%"))
        device_ids = select(Device.id).where(Device.case_id.in_(case_ids))
        job_ids = select(Job.id).where(Job.device_id.in_(device_ids))
        return {
            "cases": conn.scalar(select(func.count()).where(Case.id.in_(case_ids))),
            "devices": conn.scalar(select(func.count()).where(Device.id.in_(device_ids))),
            "jobs": conn.scalar(select(func.count()).where(Job.id.in_(job_ids))),
            "edges": conn.scalar(select(func.count()).where(JobPredecessor.job_id.in_(job_ids))),
        }


def audit_count(app, actor: str, action: str = "case.import") -> int:
    with app.state.engine.connect() as conn:
        return conn.scalar(
            select(func.count()).where(AuditEvent.actor == actor, AuditEvent.action == action)
        )


def post(client, headers, cases):
    return client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=headers)


def test_same_payload_twice_duplicates_nothing(app, client, integration):
    cases = [case_payload(f"IDEM-{i}", devices=2) for i in range(5)]
    first = post(client, integration, cases)
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 5, "updated": 0, "unchanged": 0, "run": None}
    stored = counts(app, "IDEM-")
    assert stored == {"cases": 5, "devices": 10, "jobs": 30, "edges": 20}
    actor = integration["X-API-Key"].split("_")[1]
    assert audit_count(app, actor) == 5

    second = post(client, integration, cases)
    assert second.json() == {"created": 0, "updated": 0, "unchanged": 5, "run": None}
    assert counts(app, "IDEM-") == stored
    assert audit_count(app, actor) == 5  # nothing changed, nothing audited


def test_a_changed_job_updates_only_its_case(app, client, integration, admin):
    cases = [case_payload(f"UPD-{i}") for i in range(3)]
    assert post(client, integration, cases).json()["created"] == 3
    changed = copy.deepcopy(cases)
    changed[1]["devices"][0]["jobs"][2]["attended_minutes"] = 180
    changed[1]["devices"][0]["jobs"][2]["skills"] = ["review", "mobile"]
    result = post(client, integration, changed).json()
    assert result == {"created": 0, "updated": 1, "unchanged": 2, "run": None}
    jobs = client.get(f"/labs/{LAB}/jobs?case=UPD-1", headers=admin).json()["items"]
    review = next(j for j in jobs if j["external_ref"] == "review")
    assert review["attended_minutes"] == 180
    assert review["skills"] == ["mobile", "review"]
    assert review["after"] == ["D1/process"]
    assert counts(app, "UPD-")["jobs"] == 9


def test_predecessors_and_requirements_are_stored_by_reference(client, integration, admin):
    case = case_payload("REQ-1", devices=2)
    case["devices"][1]["jobs"].append(
        {
            "external_ref": "report",
            "stage": "report",
            "attended_minutes": 240,
            "after": ["D1/review", "review"],
            "pools": ["axiom"],
            "allowed_examiners": ["E1"],
            "workstation_minutes": {"W1": 30},
        }
    )
    assert post(client, integration, [case]).json()["created"] == 1
    jobs = client.get(f"/labs/{LAB}/jobs?case=REQ-1", headers=admin).json()["items"]
    report = next(j for j in jobs if j["external_ref"] == "report")
    assert report["after"] == ["D1/review", "D2/review"]
    assert report["pools"] == ["axiom"]
    assert report["allowed_examiners"] == ["E1"]
    assert report["workstation_minutes"] == {"W1": 30}
    assert report["status"] == "pending"
    assert post(client, integration, [case]).json()["unchanged"] == 1


def test_new_devices_join_an_existing_case_and_old_ones_stay(app, client, integration):
    assert post(client, integration, [case_payload("GROW-1")]).json()["created"] == 1
    grown = case_payload("GROW-1", devices=2)
    grown["devices"] = grown["devices"][1:]  # only the new device D2
    assert post(client, integration, [grown]).json() == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "run": None,
    }
    assert counts(app, "GROW-") == {"cases": 1, "devices": 2, "jobs": 6, "edges": 4}


def test_reimport_keeps_job_status(client, integration, admin):
    assert post(client, integration, [case_payload("STAT-1")]).json()["created"] == 1
    jobs = client.get(f"/labs/{LAB}/jobs?case=STAT-1", headers=admin).json()["items"]
    acquire = next(j for j in jobs if j["external_ref"] == "acquire")
    assert client.post(f"/labs/{LAB}/jobs/{acquire['id']}:done", headers=admin).status_code == 200
    assert post(client, integration, [case_payload("STAT-1")]).json()["unchanged"] == 1
    again = client.get(f"/labs/{LAB}/jobs/{acquire['id']}", headers=admin).json()
    assert again["status"] == "done"


def _bad(mutate):
    cases = [case_payload(f"BAD-{i}") for i in range(3)]
    mutate(cases)
    return cases


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda c: c[1]["devices"][0].update(kind="toaster"), 422, "cases[1].devices[0].kind"),
        (
            lambda c: c[2]["devices"][0]["jobs"][0].update(attended_minutes=True),
            422,
            "cases[2].devices[0].jobs[0].attended_minutes",
        ),
        (
            lambda c: c[0]["devices"][0]["jobs"][1].update(severity=4),
            422,
            "cases[0].devices[0].jobs[1].severity",
        ),
        (
            lambda c: c[1].update(received_at="2026-11-02T09:00:00"),
            422,
            "cases[1].received_at",
        ),
        (lambda c: c[2].update(priority="P9"), 422, "cases[2].priority"),
        (
            lambda c: c[1]["devices"][0]["jobs"][2].update(after=["D7/acquire"]),
            422,
            "cases[1].devices[0].jobs[2].after[0]",
        ),
        (
            lambda c: c[0]["devices"][0]["jobs"][0].update(after=["review"]),
            422,
            "cases[0].devices[0].jobs[0].after",
        ),
        (
            lambda c: c[2]["devices"][0]["jobs"][0].update(pools=["nope"]),
            422,
            "cases[2].devices[0].jobs[0].pools[0]",
        ),
        (
            lambda c: c[2]["devices"][0]["jobs"][0].update(workstation_minutes={"W9": 5}),
            422,
            "cases[2].devices[0].jobs[0].workstation_minutes.W9",
        ),
        (lambda c: c[2].update(external_ref="BAD-0"), 422, "cases[2].external_ref"),
        (
            lambda c: c[0]["devices"][0]["jobs"].append(c[0]["devices"][0]["jobs"][0]),
            422,
            "cases[0].devices[0].jobs[3].external_ref",
        ),
        (lambda c: c[1].update(note="n" * 201), 422, "cases[1].note"),
    ],
    ids=[
        "enum",
        "bool-as-int",
        "bound",
        "naive-instant",
        "unknown-level",
        "unknown-predecessor",
        "cycle",
        "unknown-pool",
        "unknown-workstation",
        "duplicate-case",
        "duplicate-job",
        "long-note",
    ],
)
def test_a_bad_item_names_index_and_field_and_stores_nothing(
    app, client, integration, mutate, status, field
):
    response = post(client, integration, _bad(mutate))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    fields = [e["field"] for e in problem.get("errors", [])] or [problem.get("field")]
    assert field in fields, problem
    assert field.split(".")[0] in problem["detail"]
    assert counts(app, "BAD-") == {"cases": 0, "devices": 0, "jobs": 0, "edges": 0}


def test_an_empty_import_is_422(client, integration):
    assert post(client, integration, []).status_code == 422


def test_supervisor_may_import_but_auditor_may_not(client, keymaker, lab):
    supervisor = keymaker.headers("supervisor", lab=lab)
    auditor = keymaker.headers("auditor", lab=lab)
    assert post(client, supervisor, [case_payload("ROLE-1")]).status_code == 200
    assert post(client, auditor, [case_payload("ROLE-2")]).status_code == 403


def test_the_garbage_collector_runs_again_after_imports(client, integration):
    import gc

    assert post(client, integration, [case_payload("GC-1")]).status_code == 200
    assert gc.isenabled()
    bad = case_payload("GC-2")
    bad["priority"] = "P9"
    assert post(client, integration, [bad]).status_code == 422
    assert gc.isenabled()


def test_a_case_created_concurrently_is_a_conflict_not_a_crash(
    app, client, integration, monkeypatch
):
    """Another import created the case after this one looked: the insert fails cleanly (409)."""
    from scheduler.services import case_import

    assert post(client, integration, [case_payload("RACE-1")]).status_code == 200

    def stale_load(session, lab, refs, lookups):
        return case_import._Stored(cases={}, case_trees={}, device_ids={}, job_ids={})

    monkeypatch.setattr(case_import, "_load", stale_load)
    response = post(client, integration, [case_payload("RACE-1"), case_payload("RACE-2")])
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    monkeypatch.undo()
    assert counts(app, "RACE-") == {"cases": 1, "devices": 1, "jobs": 3, "edges": 2}


def _items(cases):
    """Payload items as the route hands them to the service (validated, instants parsed)."""
    from pydantic import TypeAdapter

    from api.schemas.cases import ImportIn

    return TypeAdapter(ImportIn).validate_python({"cases": cases})["cases"]


def _import_after_snapshot(app, client, integration, concurrent, cases):
    """Import ``cases`` worked out in a snapshot taken before ``concurrent`` (another import)
    commits, as a request's import is when another change lands between its reading and its
    taking the lab's lock; returns the result and the lab's audit events of the import."""
    from scheduler.db import session_scope
    from scheduler.services.case_import import import_cases
    from scheduler.services.labs import get_lab

    engine = app.state.engine
    with session_scope(engine, read_only=True) as reader:
        lab = get_lab(reader, LAB)  # the snapshot starts here
        assert post(client, integration, concurrent).status_code == 200
        with session_scope(engine) as session:
            result = import_cases(session, lab, _items(cases), actor="snapshot", reader=reader)
    return result, audit_count(app, "snapshot")


def test_a_case_created_after_the_snapshot_is_found_under_the_lock(app, client, integration):
    case = case_payload("SNAP-1")
    result, audited = _import_after_snapshot(app, client, integration, [case], [case])

    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert counts(app, "SNAP-") == {"cases": 1, "devices": 1, "jobs": 3, "edges": 2}
    assert audited == 0


def test_a_change_made_after_the_snapshot_is_compared_under_the_lock(app, client, integration):
    original = case_payload("SNAP-2")
    assert post(client, integration, [original]).status_code == 200
    changed = copy.deepcopy(original)
    changed["devices"][0]["jobs"][2]["attended_minutes"] = 99
    # The snapshot sees the original, so the import looks like a change; under the lock the
    # same change is already stored, and the import writes (and audits) nothing.
    result, audited = _import_after_snapshot(app, client, integration, [changed], [changed])

    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert audited == 0


def test_an_import_worked_out_before_a_change_writes_onto_the_current_rows(
    app, client, integration, admin
):
    original = case_payload("SNAP-3")
    assert post(client, integration, [original]).status_code == 200
    grown = case_payload("SNAP-3", devices=2)
    changed = copy.deepcopy(original)
    changed["devices"][0]["jobs"][2]["attended_minutes"] = 99
    result, audited = _import_after_snapshot(app, client, integration, [grown], [changed])

    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    assert audited == 1
    assert counts(app, "SNAP-3") == {"cases": 1, "devices": 2, "jobs": 6, "edges": 4}
    jobs = client.get(f"/labs/{LAB}/jobs?case=SNAP-3", headers=admin).json()["items"]
    minutes = sorted((j["device"], j["external_ref"], j["attended_minutes"]) for j in jobs)
    assert ("D1", "review", 99) in minutes and ("D2", "review", 120) in minutes


def test_each_imported_case_is_audited_under_its_reference(app, client, integration, admin):
    cases = [case_payload(f"NAMED-{i}") for i in range(3)]
    assert post(client, integration, cases).status_code == 200
    cases[1]["note"] = "changed"
    assert post(client, integration, cases).json()["updated"] == 1

    with app.state.engine.connect() as conn:
        ids = dict(
            conn.execute(
                select(Case.external_ref, Case.id).where(Case.external_ref.like("NAMED-%"))
            ).all()
        )
        events = conn.execute(
            select(AuditEvent.entity_ref, AuditEvent.entity_id)
            .where(AuditEvent.action == "case.import", AuditEvent.entity_ref.like("NAMED-%"))
            .order_by(AuditEvent.id)
        ).all()
    named = ["NAMED-0", "NAMED-1", "NAMED-2", "NAMED-1"]
    assert [tuple(e) for e in events] == [(ref, str(ids[ref])) for ref in named]


def test_imported_rows_store_instants_as_every_other_write_does(app, client, integration, admin):
    """The import sends its rows to the driver itself; on SQLite its instants must be the same
    text as the ORM writes, or ordering and comparing them in SQL would go wrong."""
    assert post(client, integration, [case_payload("FORM-1")]).status_code == 200
    put = client.put(
        f"/labs/{LAB}/cases/FORM-2",
        json={"priority": "P4", "received_at": "2026-11-02T10:00:00+01:00"},
        headers=admin,
    )
    assert put.status_code == 201, put.text
    columns = "received_at, legal_deadline_at, created_at, updated_at"
    with app.state.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            pytest.skip("PostgreSQL stores instants in its own type")
        imported, single = (
            conn.exec_driver_sql(
                f'SELECT {columns} FROM "case" WHERE external_ref = ?', (ref,)
            ).one()
            for ref in ("FORM-1", "FORM-2")
        )
        device = conn.exec_driver_sql(
            'SELECT d.arrived_at, d.locked FROM device d JOIN "case" c ON c.id = d.case_id '
            "WHERE c.external_ref = 'FORM-1'"
        ).one()
    assert imported[0] == single[0] == "2026-11-02 09:00:00.000000"
    assert imported[1] is None and single[1] is None
    assert all(len(text) == len(single[2]) for text in (imported[2], imported[3], single[3]))
    assert tuple(device) == ("2026-11-02 12:00:00.000000", 0)
