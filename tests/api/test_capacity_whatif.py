"""Capacity and what-if over HTTP, with real CP-SAT runs on a small lab whose licence pool is the
bottleneck: the analysis names it, and a what-if with more licences and a server plans more work
without writing a schedule version (docs/architecture.md §5.10, §5.11)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from models import AuditEvent, ScheduleVersion
from scheduler.db import session_scope
from scheduler.worker import run_once

LAB = "cap"
NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # a Monday, before the shift
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]
CASES = 14


def case(n: int) -> dict[str, object]:
    """A computer already imaged: processing (15 min to start, 12 h on a server holding an AXIOM
    licence), then a two-hour review."""
    return {
        "external_ref": f"C{n:02d}",
        "priority": "P3",
        "received_at": "2026-11-23T09:00:00+00:00",
        "devices": [
            {
                "external_ref": "D1",
                "kind": "computer",
                "arrived_at": "2026-11-23T12:00:00+00:00",
                "jobs": [
                    {
                        "external_ref": "process",
                        "stage": "process",
                        "attended_minutes": 15,
                        "machine_minutes": 720,
                        "capabilities": ["processing"],
                        "pools": ["axiom"],
                    },
                    {
                        "external_ref": "review",
                        "stage": "review",
                        "attended_minutes": 120,
                        "skills": ["review"],
                        "after": ["process"],
                    },
                ],
            }
        ],
    }


def solve(app) -> None:
    assert run_once(app.state.engine, "w-cap", policy="cpsat", now=NOW, workers=1)


@pytest.fixture(scope="module")
def sup(client, keymaker, admin, app) -> dict[str, str]:
    r = client.post("/labs", json={"code": LAB, "name": "Cap", "timezone": "UTC"}, headers=admin)
    assert r.status_code == 201, r.text
    headers = keymaker.headers("supervisor", LAB)
    for ref in ("E1", "E2"):
        r = client.put(
            f"/labs/{LAB}/examiners/{ref}",
            json={"skills": ["review"], "shifts": SHIFTS},
            headers=headers,
        )
        assert r.status_code == 201, r.text
    for ref in ("S1", "S2"):
        r = client.put(
            f"/labs/{LAB}/workstations/{ref}",
            json={"capabilities": ["processing"]},
            headers=headers,
        )
        assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/licence-pools/axiom", json={"capacity": 1}, headers=headers)
    assert r.status_code in (200, 201), r.text
    r = client.post(
        f"/labs/{LAB}/cases:import",
        json={"cases": [case(n) for n in range(CASES)]},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/labs/{LAB}/solve-runs",
        json={"mode": "full", "auto_publish": True, "time_limit_seconds": 5},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    solve(app)
    assert client.get(f"/labs/{LAB}/schedules/current", headers=headers).status_code == 200
    return headers


def test_capacity_names_the_licence_pool_as_the_bottleneck(client, sup):
    r = client.get(f"/labs/{LAB}/capacity", headers=sup)
    assert r.status_code == 200, r.text
    body = r.json()
    pool = body["by_pool"][0]
    assert pool["id"] == "axiom" and pool["units"] == 1
    # 14 jobs of 12 h need 168 h of licence time; one licence offers the horizon's hours.
    assert pool["demand_minutes"] == CASES * 720
    assert pool["available_minutes"] == body["horizon_minutes"]
    assert pool["waiting_jobs"] > 0 and pool["shift_share"] > 0.9
    assert body["bottleneck"]["kind"] == "pool" and body["bottleneck"]["id"] == "axiom"
    assert body["bottleneck"]["waiting_by_stage"] == {"review": pool["waiting_jobs"]}
    assert body["examiners"]["share"] < 0.5  # examiners are starved, not short
    assert body["sentence"].startswith("AXIOM licences (1) are ")
    assert f"{pool['waiting_jobs']} reviews wait for processing." in body["sentence"]
    skills = {load["id"]: load for load in body["by_skill"]}
    assert skills["review"]["units"] == 2 and skills["review"]["demand_minutes"] == CASES * 120
    assert {load["id"] for load in body["by_examiner"]} == {"E1", "E2"}


def test_capacity_is_read_by_supervisors_and_auditors_only(client, keymaker, sup):
    auditor = keymaker.headers("auditor", LAB)
    assert client.get(f"/labs/{LAB}/capacity", headers=auditor).status_code == 200
    examiner = keymaker.headers("examiner", LAB, examiner="E1")
    assert client.get(f"/labs/{LAB}/capacity", headers=examiner).status_code == 403
    assert client.get(f"/labs/{LAB}/capacity").status_code == 401
    missing = client.get(f"/labs/{LAB}/capacity", params={"version": "999999"}, headers=sup)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_what_if_previews_more_licences_without_a_schedule_version(client, app, sup):
    before = client.get(f"/labs/{LAB}/schedules/current", headers=sup).json()
    with session_scope(app.state.engine) as session:
        versions = session.scalar(select(func.count()).select_from(ScheduleVersion))
    r = client.post(
        f"/labs/{LAB}/what-ifs",
        json={
            "licences": [{"pool": "axiom", "capacity": 3}],
            "add_workstations": [{"count": 1, "capabilities": ["processing"]}],
            "time_limit_seconds": 5,
        },
        headers=sup,
    )
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["status"] == "queued" and created["comparison"] is None
    assert created["baseline_version"] == before["id"]
    assert created["described"] == [
        "add 1 workstation(s) with processing (capacity 1)",
        "axiom licences: 3",
    ]
    assert r.headers["Location"] == f"/labs/{LAB}/what-ifs/{created['id']}"
    solve(app)
    done = client.get(r.headers["Location"], headers=sup).json()
    assert done["status"] == "succeeded", done["error"]
    baseline, preview = done["comparison"]["baseline"], done["comparison"]["preview"]
    assert baseline["version"] == before["id"]
    assert baseline["scheduled"] == before["kpis"]["scheduled"]
    assert preview["scheduled"] > baseline["scheduled"]
    assert preview["unscheduled"] < baseline["unscheduled"]
    assert preview["cleared_by"]["P3"] < baseline["cleared_by"]["P3"]
    assert preview["exposure"]["breaches"] == 0 and baseline["exposure"]["breaches"] == 0
    assert preview["bottleneck"] != baseline["bottleneck"]
    # Nothing was written as a schedule: no version, the published one unchanged.
    with session_scope(app.state.engine) as session:
        assert session.scalar(select(func.count()).select_from(ScheduleVersion)) == versions
        actions = set(
            session.scalars(select(AuditEvent.action).where(AuditEvent.entity_type == "what_if"))
        )
    assert actions == {"what_if.create"}
    run = client.get(f"/labs/{LAB}/solve-runs/{done['solve_run']}", headers=sup).json()
    assert run["mode"] == "preview" and run["schedule_version"] is None
    assert client.get(f"/labs/{LAB}/schedules/current", headers=sup).json()["id"] == before["id"]
    listed = client.get(f"/labs/{LAB}/what-ifs", headers=sup).json()
    assert listed[0]["id"] == done["id"]


def test_fewer_examiners_and_a_shorter_target_on_paper(client, app, sup):
    r = client.post(
        f"/labs/{LAB}/what-ifs",
        json={
            "remove_examiners": ["E2"],
            "add_examiners": [{"count": 1, "skills": ["review"], "like": "E1"}],
            "overtime": {"minutes_per_day": 60},
            "weekend": {"examiners": ["E1"], "minutes": 60},
            "targets": [{"level": "P3", "target_start_hours": 24}],
            "time_limit_seconds": 3,
        },
        headers=sup,
    )
    assert r.status_code == 202, r.text
    solve(app)
    done = client.get(r.headers["Location"], headers=sup).json()
    assert done["status"] == "succeeded", done["error"]
    preview = done["comparison"]["preview"]
    assert preview["examiners"] == 2  # E1 and the one added like E1
    # Weekend cover lets processing start on Saturday and Sunday too.
    assert preview["scheduled"] > done["comparison"]["baseline"]["scheduled"]


def test_a_what_if_never_joins_another_run(client, app, sup):
    plain = client.post(
        f"/labs/{LAB}/solve-runs", json={"mode": "preview", "time_limit_seconds": 1}, headers=sup
    ).json()
    first = client.post(
        f"/labs/{LAB}/what-ifs", json={"licences": [{"pool": "axiom", "capacity": 2}]}, headers=sup
    ).json()
    second = client.post(
        f"/labs/{LAB}/what-ifs", json={"licences": [{"pool": "axiom", "capacity": 5}]}, headers=sup
    ).json()
    again = client.post(
        f"/labs/{LAB}/solve-runs", json={"mode": "preview", "time_limit_seconds": 1}, headers=sup
    ).json()
    assert len({plain["id"], first["solve_run"], second["solve_run"]}) == 3
    assert again["id"] == plain["id"] and again["joined"]
    for run in (plain["id"], first["solve_run"], second["solve_run"]):
        assert client.post(f"/labs/{LAB}/solve-runs/{run}:cancel", headers=sup).status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, ""),
        ({"add_examiners": [{"count": 1, "skills": ["juggling"]}]}, "add_examiners[0].skills[0]"),
        ({"add_examiners": [{"count": -1, "skills": ["review"]}]}, "add_examiners[0].count"),
        ({"add_examiners": [{"count": 1, "skills": ["review"], "like": "E9"}]}, "like"),
        ({"remove_examiners": ["E9"]}, "remove_examiners[0]"),
        ({"remove_workstations": ["S9"]}, "remove_workstations[0]"),
        ({"add_workstations": [{"count": 1, "capabilities": ["x"]}]}, "capabilities[0]"),
        ({"licences": [{"pool": "nope", "capacity": 2}]}, "licences[0].pool"),
        ({"licences": [{"pool": "axiom", "capacity": 0}]}, "capacity"),
        ({"overtime": {"minutes_per_day": -30}}, "minutes_per_day"),
        ({"weekend": {"examiners": ["E1"], "minutes": 60, "start": "25:00"}}, "start"),
        ({"targets": [{"level": "P9", "target_start_hours": 24}]}, "targets[0].level"),
        ({"licences": [{"pool": "axiom", "capacity": 2}], "surprise": 1}, "surprise"),
        ({"licences": [{"pool": "axiom", "capacity": 2}], "time_limit_seconds": 0}, "time_limit"),
    ],
)
def test_bad_what_ifs_are_problems_naming_the_field(client, sup, payload, field):
    r = client.post(f"/labs/{LAB}/what-ifs", json=payload, headers=sup)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    fields = [e.get("field", "") for e in body.get("errors", [])] or [body.get("field", "")]
    assert any(field in f for f in fields), body


def test_what_ifs_need_a_supervisor_of_the_lab(client, keymaker, sup):
    payload = {"licences": [{"pool": "axiom", "capacity": 2}]}
    for role, kwargs in (("auditor", {}), ("examiner", {"examiner": "E1"})):
        headers = keymaker.headers(role, LAB, **kwargs)
        assert (
            client.post(f"/labs/{LAB}/what-ifs", json=payload, headers=headers).status_code == 403
        )
    r = client.post(
        "/labs",
        json={"code": "cap-other", "name": "O", "timezone": "UTC"},
        headers=keymaker.headers("admin"),
    )
    assert r.status_code == 201
    other = keymaker.headers("supervisor", "cap-other")
    assert client.post(f"/labs/{LAB}/what-ifs", json=payload, headers=other).status_code == 403
    assert client.get("/labs/cap-other/what-ifs/1", headers=other).status_code == 404
