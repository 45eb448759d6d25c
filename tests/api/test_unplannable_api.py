"""Over HTTP, records stored past the API's validation do not stop the lab: the snapshot export
answers, a run succeeds and publishes, and the version names each unplannable record."""

from __future__ import annotations

from datetime import UTC, datetime

from api_support import case_payload
from sqlalchemy import text

from scheduler.core.snapshot import snapshot_from_json
from scheduler.db import session_scope
from scheduler.worker import run_once

LAB = "unplannable"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]


def test_snapshot_and_run_survive_bad_records_and_the_version_names_them(
    client, app, keymaker, admin
):
    r = client.post(
        "/labs", json={"code": LAB, "name": "Unplannable", "timezone": "UTC"}, headers=admin
    )
    assert r.status_code == 201, r.text
    sup = keymaker.headers("supervisor", LAB)
    for ref in ("E1", "E2"):
        r = client.put(
            f"/labs/{LAB}/examiners/{ref}",
            json={"skills": ["mobile", "review"], "shifts": SHIFTS},
            headers=sup,
        )
        assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=sup)
    assert r.status_code == 201
    cases = [case_payload(f"R{n}", "P2") for n in range(1, 4)]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=sup)
    assert r.status_code == 200, r.text

    late = datetime.fromisoformat("9999-12-31T23:59:59+14:00").astimezone(UTC)
    with session_scope(app.state.engine) as session:
        lab_id = session.scalar(text("SELECT id FROM lab WHERE code = :c"), {"c": LAB})
        session.execute(
            text('UPDATE "case" SET received_at = :at WHERE lab_id = :lab AND external_ref = :r'),
            {"at": late, "lab": lab_id, "r": "R1"},
        )
        session.execute(
            text(
                'UPDATE device SET arrived_at = :at WHERE case_id = (SELECT id FROM "case" '
                "WHERE lab_id = :lab AND external_ref = :r)"
            ),
            {"at": datetime(1, 1, 1, tzinfo=UTC), "lab": lab_id, "r": "R2"},
        )
        session.execute(
            text("UPDATE examiner SET daily_cap_minutes = :cap WHERE lab_id = :lab AND "
                 "external_ref = 'E2'"),
            {"cap": 2**31 - 1, "lab": lab_id},
        )  # fmt: skip

    r = client.get(f"/labs/{LAB}/snapshot", headers=sup)
    assert r.status_code == 200, r.text
    snapshot = snapshot_from_json(r.json())
    assert [e.id for e in snapshot.examiners] == ["E1"]
    assert {job.case for job in snapshot.jobs} == {"R3"}

    r = client.post(
        f"/labs/{LAB}/solve-runs",
        json={"auto_publish": True, "time_limit_seconds": 2},
        headers=sup,
    )
    assert r.status_code == 202, r.text
    assert run_once(app.state.engine, "w-unplannable", policy="fifo")
    run = client.get(r.headers["Location"], headers=sup).json()
    assert run["status"] == "succeeded", run
    current = client.get(f"/labs/{LAB}/schedules/current", headers=sup).json()
    assert current["id"] == run["schedule_version"]
    named = current["kpis"]["unplannable"]
    assert len(named) == 3, named
    assert any("case R1: received_at" in n for n in named)
    assert any("device R2/D1: arrived_at" in n for n in named)
    assert any(
        n.startswith("examiner E2 ") and "daily_cap" in n for n in current["kpis"]["warnings"]
    )

    r = client.get(
        f"/labs/{LAB}/schedules/{current['id']}/unscheduled",
        params={"reason": "unplannable_record", "limit": 100},
        headers=sup,
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {item["job"].split("/")[0] for item in items} == {"R1", "R2"}
    assert len(items) == 6  # three stages on each device
    assert all(item["reason"] == "unplannable_record" for item in items)
    assert all(("received_at" in item["detail"]) == item["job"].startswith("R1/") for item in items)
