"""The whole planning flow over HTTP: build a lab, import cases, queue a run, let a worker run it,
publish, and read every view, export and report. Real app, real database, real CP-SAT."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import pytest
from api_support import all_pages, case_payload
from icalendar import Calendar

from scheduler.worker import run_once

LAB = "flow"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]


@dataclass
class Flow:
    sup: dict[str, str]
    first_run: dict[str, Any]
    version: int


def all_assignments(client, headers) -> list[dict[str, Any]]:
    return all_pages(client, f"/labs/{LAB}/schedules/current/assignments", headers)


def _run_worker(app, policy: str = "cpsat") -> None:
    assert run_once(app.state.engine, "w-http", policy=policy)


@pytest.fixture(scope="module")
def flow(client, app, keymaker, admin) -> Flow:
    created = client.post(
        "/labs",
        json={
            "code": LAB,
            "name": "Flow lab",
            "timezone": "America/New_York",
            "planning_horizon_days": 5,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    sup = keymaker.headers("supervisor", LAB)
    for ref, skills in (("E1", ["mobile", "review"]), ("E2", ["mobile", "review"])):
        r = client.put(
            f"/labs/{LAB}/examiners/{ref}", json={"skills": skills, "shifts": SHIFTS}, headers=sup
        )
        assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=sup)
    assert r.status_code == 201, r.text
    cases = [case_payload(f"C{n}", priority=("P1", "P2", "P3", "P4")[n % 4]) for n in range(1, 5)]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=sup)
    assert r.status_code == 200, r.text

    queued = client.post(
        f"/labs/{LAB}/solve-runs", json={"time_limit_seconds": 2, "reason": "test"}, headers=sup
    )
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    location = queued.headers["Location"]
    _run_worker(app)
    run = client.get(location, headers=sup).json()
    assert run["status"] == "succeeded", run
    assert run["progress"] == 1.0 and run["schedule_version"] is not None
    return Flow(sup=sup, first_run=run, version=run["schedule_version"])


@pytest.fixture(scope="module")
def published(client, flow) -> int:
    r = client.post(f"/labs/{LAB}/schedules/{flow.version}:publish", headers=flow.sup)
    assert r.status_code == 200, r.text
    assert r.json()["is_current"] is True
    return flow.version


def test_a_version_is_not_published_until_asked(client, flow):
    version = client.get(f"/labs/{LAB}/schedules/{flow.version}", headers=flow.sup).json()
    assert version["is_current"] is False and version["published_at"] is None
    assert version["solve_run"] == flow.first_run["id"] and version["mode"] == "full"
    assert version["kpis"]["scheduled"] == version["assignments"] > 0
    assert set(version["terms"]) >= {"tardiness", "change", "balance", "continuity"}


def test_current_schedule_with_etag(client, flow, published):
    r = client.get(f"/labs/{LAB}/schedules/current", headers=flow.sup)
    assert r.status_code == 200
    assert r.json()["id"] == published and r.json()["published_at"] is not None
    again = client.get(
        f"/labs/{LAB}/schedules/current", headers={**flow.sup, "If-None-Match": r.headers["ETag"]}
    )
    assert again.status_code == 304


def test_assignments_examiner_workstation_and_case_views_agree(client, flow, published):
    rows = all_assignments(client, flow.sup)
    assert rows and all(r["job"].count("/") == 2 for r in rows)
    by_examiner = {}
    for ref in ("E1", "E2"):
        view = client.get(f"/labs/{LAB}/schedules/current/examiners/{ref}", headers=flow.sup)
        assert view.status_code == 200
        by_examiner[ref] = view.json()["assignments"]
        assert all(a["examiner"] == ref for a in by_examiner[ref])
        assert view.json()["exposure"]["daily_cap"] == 240
    attended = [r for r in rows if r["examiner"] is not None]
    assert len(attended) == sum(len(v) for v in by_examiner.values())
    u1 = client.get(f"/labs/{LAB}/schedules/current/workstations/U1", headers=flow.sup).json()
    assert {a["job_id"] for a in u1["assignments"]} == {
        r["job_id"] for r in rows if r["workstation"] == "U1"
    }
    case = client.get(f"/labs/{LAB}/schedules/{published}/cases/C1", headers=flow.sup).json()
    assert {a["case"] for a in case["assignments"]} <= {"C1"}
    assert len(case["assignments"]) + len(case["unscheduled"]) == 3  # acquire, process, review
    window = client.get(
        f"/labs/{LAB}/schedules/current/assignments",
        params={"starts_before": rows[0]["ends_at"]},
        headers=flow.sup,
    ).json()["items"]
    assert 1 <= len(window) <= len(rows)


def test_unscheduled_jobs_carry_a_reason(client, flow, published):
    page = client.get(f"/labs/{LAB}/schedules/current/unscheduled", headers=flow.sup).json()
    version = client.get(f"/labs/{LAB}/schedules/current", headers=flow.sup).json()
    assert len(page["items"]) == version["unscheduled"]
    assert all(item["reason"] for item in page["items"])


def test_ical_feed_of_an_examiner(client, flow, published):
    view = client.get(f"/labs/{LAB}/schedules/current/examiners/E1", headers=flow.sup).json()
    r = client.get(f"/labs/{LAB}/examiners/E1/schedule.ics", headers=flow.sup)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(r.content)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == len(view["assignments"])
    for event in events:
        assert str(event["SUMMARY"]).split()[1].startswith("C")  # "<stage> C1/D1 (P1)"
        assert str(event["UID"]).startswith(f"labq-{LAB}-job-")


def test_csv_export(client, flow, published):
    rows = all_assignments(client, flow.sup)
    r = client.get(f"/labs/{LAB}/schedules/current/export.csv", headers=flow.sup)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == len(rows)
    assert {t["job"] for t in table} == {row["job"] for row in rows}
    assert table[0]["starts_at"].endswith(("-05:00", "-04:00"))  # lab-local time


def test_gantt_page(client, flow, published):
    r = client.get(f"/labs/{LAB}/schedules/current/gantt", headers=flow.sup)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<!DOCTYPE html>" in r.text and "E1" in r.text and "U1" in r.text


def test_case_forecast_says_when_and_why(client, flow, published):
    r = client.get(f"/labs/{LAB}/cases/C1/forecast", headers=flow.sup)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["priority"] == "P2" and body["schedule_version"] == published
    assert body["jobs_open"] == 3 and len(body["jobs"]) == 3
    assert body["expected_examination_start"] is not None
    assert all(j["source"] in ("schedule", "forecast") for j in body["jobs"])
    assert body["target_start_at"] is not None and isinstance(body["why_not_sooner"], list)
    listing = client.get(f"/labs/{LAB}/forecasts", headers=flow.sup).json()
    assert {item["case"] for item in listing["items"]} == {"C1", "C2", "C3", "C4"}


def test_recommendations_for_one_job(client, flow, published):
    rows = all_assignments(client, flow.sup)
    last = rows[-1]
    r = client.get(
        f"/labs/{LAB}/jobs/{last['job_id']}/recommendations", params={"limit": 3}, headers=flow.sup
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job"] == last["job"]
    assert len(body["options"]) <= 3
    assert all(o["examiner"] in (None, "E1", "E2") for o in body["options"])
    job = client.get(f"/labs/{LAB}/jobs/{last['job_id']}", headers=flow.sup).json()
    by_ref = client.get(
        f"/labs/{LAB}/cases/{job['case']}/devices/{job['device']}/jobs/{job['external_ref']}"
        "/recommendations",
        params={"limit": 3},
        headers=flow.sup,
    )
    assert by_ref.status_code == 200, by_ref.text
    assert by_ref.json() == body
    costs = [o["cost_delta"] for o in body["options"]]
    assert costs == sorted(costs)


def test_reports(client, flow, published):
    backlog = client.get(f"/labs/{LAB}/reports/backlog", headers=flow.sup).json()
    assert backlog["total_cases"] == 4 and backlog["schedule_version"] == published
    assert sum(level["cases"] for level in backlog["levels"]) == 4
    breaches = client.get(f"/labs/{LAB}/reports/sla-breaches", headers=flow.sup).json()
    # Received 2026-11-02: the P1-P3 cases (24 h, 72 h, 14 d targets) have not started in time.
    late = {c["case"]: c for c in breaches["cases"]}
    assert {"C1", "C2", "C4"} <= set(late)
    assert all("target_start_passed" in late[c]["breaches"] for c in ("C1", "C2", "C4"))
    assert breaches["count"] == len(breaches["cases"])
    exposure = client.get(f"/labs/{LAB}/reports/exposure", headers=flow.sup).json()
    assert {e["examiner"] for e in exposure["examiners"]} == {"E1", "E2"}
    planned = sum(w["planned"] for e in exposure["examiners"] for w in e["weeks"])
    rows = all_assignments(client, flow.sup)
    assert planned == sum(r["exposure_minutes"] for r in rows if r["examiner"])
    util = client.get(f"/labs/{LAB}/reports/utilization", headers=flow.sup).json()
    assert {e["examiner"] for e in util["examiners"]} == {"E1", "E2"}
    assert 0 < util["examiner_share"] <= 1


def test_an_examiner_key_sees_only_its_own_schedule(client, keymaker, flow, published):
    mine = keymaker.headers("examiner", LAB, "E1")
    assert client.get(f"/labs/{LAB}/schedules/current/examiners/E1", headers=mine).status_code == (
        200
    )
    assert client.get(f"/labs/{LAB}/examiners/E1/schedule.ics", headers=mine).status_code == 200
    for path in (
        f"/labs/{LAB}/schedules/current/examiners/E2",
        f"/labs/{LAB}/examiners/E2/schedule.ics",
        f"/labs/{LAB}/schedules/current",
        f"/labs/{LAB}/schedules/current/assignments",
        f"/labs/{LAB}/schedules/current/export.csv",
        f"/labs/{LAB}/cases/C1/forecast",
        f"/labs/{LAB}/reports/backlog",
    ):
        r = client.get(path, headers=mine)
        assert r.status_code == 403, path
        assert r.headers["content-type"] == "application/problem+json"


def test_integration_reads_forecasts_but_not_schedules(client, keymaker, flow, published):
    integration = keymaker.headers("integration", LAB)
    assert client.get(f"/labs/{LAB}/cases/C2/forecast", headers=integration).status_code == 200
    assert client.get(f"/labs/{LAB}/schedules/current", headers=integration).status_code == 403
    r = client.post(f"/labs/{LAB}/solve-runs", json={}, headers=integration)
    assert r.status_code == 403


def test_a_second_published_run_stores_its_diff(client, app, flow, published):
    r = client.post(
        f"/labs/{LAB}/solve-runs",
        json={"time_limit_seconds": 1, "auto_publish": True, "mode": "repair"},
        headers=flow.sup,
    )
    assert r.status_code == 202
    _run_worker(app, policy="fifo")
    run = client.get(r.headers["Location"], headers=flow.sup).json()
    assert run["status"] == "succeeded", run
    current = client.get(f"/labs/{LAB}/schedules/current", headers=flow.sup).json()
    assert current["id"] == run["schedule_version"] != published
    diff = client.get(f"/labs/{LAB}/schedules/current/diff", headers=flow.sup).json()
    assert diff["from_version"] == published and diff["to_version"] == current["id"]
    counts = diff["counts"]
    assert counts["unchanged"] + counts["moved"] + counts["added"] == current["assignments"]
    for item in diff["moved"]:
        assert item["changes"] and item["from"] is not None and item["to"] is not None
    explicit = client.get(
        f"/labs/{LAB}/schedules/{current['id']}/diff", params={"from": published}, headers=flow.sup
    ).json()
    assert explicit["counts"] == counts
    old = client.get(f"/labs/{LAB}/schedules/{published}", headers=flow.sup).json()
    assert old["is_current"] is False
    stale = client.post(f"/labs/{LAB}/schedules/{published}:publish", headers=flow.sup)
    assert stale.status_code == 409


def test_bad_schedule_requests_are_problems(client, admin, flow, published):
    for path, status in (
        (f"/labs/{LAB}/schedules/abc", 422),
        (f"/labs/{LAB}/schedules/999999", 404),
        (f"/labs/{LAB}/schedules/current/examiners/E9", 404),
        (f"/labs/{LAB}/cases/NOPE/forecast", 404),
        (f"/labs/{LAB}/jobs/999999/recommendations", 404),
        ("/labs/nolab/schedules/current", 404),
    ):
        r = client.get(path, headers=admin if "nolab" in path else flow.sup)
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"]
