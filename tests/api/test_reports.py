"""Reports over HTTP: backlog by priority and age, SLA breaches, exposure vs caps vs logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import case_payload

from scheduler.worker import run_once

LAB = "rep"
SHIFTS = [{"weekday": d, "starts": "00:00", "ends": "23:59"} for d in range(7)]


def _case(ref: str, priority: str, received: datetime, deadline: datetime | None = None) -> dict:
    payload = case_payload(ref, priority)
    payload["received_at"] = received.isoformat()
    payload["legal_deadline_at"] = deadline.isoformat() if deadline else None
    for device in payload["devices"]:
        device["arrived_at"] = received.isoformat()
    return payload


@pytest.fixture(scope="module")
def sup(client, keymaker, admin) -> dict[str, str]:
    r = client.post("/labs", json={"code": LAB, "name": "Rep", "timezone": "UTC"}, headers=admin)
    assert r.status_code == 201, r.text
    headers = keymaker.headers("supervisor", LAB)
    r = client.put(
        f"/labs/{LAB}/examiners/E1",
        json={"skills": ["mobile", "review"], "shifts": SHIFTS, "exposure_cutoff": None},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=headers)
    assert r.status_code == 201
    now = datetime.now(UTC)
    cases = [
        _case("OLD", "P4", now - timedelta(days=100)),
        _case("NEW", "P3", now - timedelta(days=1), deadline=now + timedelta(hours=2)),
        _case("URG", "P1", now - timedelta(days=3)),
    ]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=headers)
    assert r.status_code == 200, r.text
    r = client.post(
        f"/labs/{LAB}/examiners/E1/exposure-logs",
        json={"day": now.date().isoformat(), "minutes": 100, "severity": 2},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return headers


def test_reports_before_anything_is_published(client, sup):
    backlog = client.get(f"/labs/{LAB}/reports/backlog", headers=sup).json()
    assert backlog["schedule_version"] is None and backlog["total_cases"] == 3
    assert all(level["expected_finish_latest"] is None for level in backlog["levels"])
    r = client.get(f"/labs/{LAB}/reports/utilization", headers=sup)
    assert r.status_code == 404 and "no published schedule" in r.json()["detail"]


def test_reports_after_publishing(client, app, sup):
    r = client.post(
        f"/labs/{LAB}/solve-runs",
        json={"time_limit_seconds": 1, "auto_publish": True},
        headers=sup,
    )
    assert r.status_code == 202
    assert run_once(app.state.engine, "w-reports", policy="priority")
    assert client.get(r.headers["Location"], headers=sup).json()["status"] == "succeeded"

    backlog = client.get(f"/labs/{LAB}/reports/backlog", headers=sup).json()
    levels = {level["priority"]: level for level in backlog["levels"]}
    assert levels["P4"]["by_age"]["91-180d"] == 1
    assert levels["P1"]["by_age"]["0-7d"] == 1 and levels["P3"]["by_age"]["0-7d"] == 1
    assert levels["P5"]["cases"] == 0
    assert all(levels[p]["open_jobs"] == 3 for p in ("P1", "P3", "P4"))
    assert levels["P1"]["expected_finish_latest"] is not None

    breaches = client.get(f"/labs/{LAB}/reports/sla-breaches", headers=sup).json()
    kinds = {c["case"]: c["breaches"] for c in breaches["cases"]}
    assert "target_start_passed" in kinds["URG"]  # P1, 24 h, received three days ago
    assert "target_start_passed" in kinds["OLD"]  # P4, 60 days, received 100 days ago
    assert "legal_deadline_at_risk" in kinds["NEW"]  # three stages cannot end in two hours
    assert breaches["by_priority"] == {"P1": 1, "P3": 1, "P4": 1}
    assert next(c for c in breaches["cases"] if c["case"] == "URG")["overdue_hours"] >= 47

    exposure = client.get(f"/labs/{LAB}/reports/exposure", headers=sup).json()
    (e1,) = exposure["examiners"]
    this_week = e1["weeks"][1]  # last week, this week, next week
    assert this_week["logged"] == 100 and this_week["weekly_cap"] == 900
    page = client.get(f"/labs/{LAB}/schedules/current/assignments?limit=500", headers=sup).json()
    assert page["next_cursor"] is None
    assignments = page["items"]
    planned = sum(a["exposure_minutes"] for a in assignments if a["examiner"] == "E1")
    assert sum(w["planned"] for w in e1["weeks"]) == planned
    assert all(w["max_day"] <= 240 for w in e1["weeks"])  # the daily cap holds, logs included

    util = client.get(f"/labs/{LAB}/reports/utilization", headers=sup).json()
    (row,) = util["examiners"]
    attended = sum(a["attended_minutes"] for a in assignments if a["examiner"] == "E1")
    assert row["examiner"] == "E1" and row["attended"] == attended


def test_reports_refuse_examiner_and_integration_keys(client, keymaker, sup):
    for role, examiner in (("examiner", "E1"), ("integration", None)):
        headers = keymaker.headers(role, LAB, examiner)
        for report in ("backlog", "sla-breaches", "exposure", "utilization"):
            r = client.get(f"/labs/{LAB}/reports/{report}", headers=headers)
            assert r.status_code == 403, (role, report)
    bad = client.get(f"/labs/{LAB}/reports/exposure", params={"weeks": 0}, headers=sup)
    assert bad.status_code == 422
