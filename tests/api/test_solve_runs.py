"""Solve runs over HTTP: 202 and never a solve in the request, validation, cancel, preview."""

from __future__ import annotations

import pytest
from api_support import case_payload

from scheduler.core.snapshot import snapshot_from_json
from scheduler.worker import run_once

LAB = "runs"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]


@pytest.fixture(scope="module")
def sup(client, keymaker, admin) -> dict[str, str]:
    r = client.post(
        "/labs", json={"code": LAB, "name": "Runs", "timezone": "Europe/London"}, headers=admin
    )
    assert r.status_code == 201, r.text
    headers = keymaker.headers("supervisor", LAB)
    for ref in ("E1", "E2"):
        r = client.put(
            f"/labs/{LAB}/examiners/{ref}",
            json={"skills": ["mobile", "review"], "shifts": SHIFTS},
            headers=headers,
        )
        assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=headers)
    assert r.status_code == 201
    r = client.post(
        f"/labs/{LAB}/cases:import",
        json={"cases": [case_payload("R1", "P1"), case_payload("R2", "P3")]},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return headers


def test_queueing_returns_202_and_leaves_the_run_queued(client, sup):
    r = client.post(f"/labs/{LAB}/solve-runs", json={"mode": "preview"}, headers=sup)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["mode"] == "preview"
    assert body["time_limit_seconds"] == 60  # the lab's setting
    assert sup["X-API-Key"].startswith(f"labq_{body['requested_by']}_")  # the key's prefix
    assert r.headers["Location"] == f"/labs/{LAB}/solve-runs/{body['id']}"
    again = client.get(r.headers["Location"], headers=sup).json()
    assert again["status"] == "queued" and again["started_at"] is None
    cancelled = client.post(f"/labs/{LAB}/solve-runs/{body['id']}:cancel", headers=sup)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    twice = client.post(f"/labs/{LAB}/solve-runs/{body['id']}:cancel", headers=sup)
    assert twice.status_code == 409
    assert twice.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"mode": "fast"}, "mode"),
        ({"time_limit_seconds": 0}, "time_limit_seconds"),
        ({"time_limit_seconds": 3601}, "time_limit_seconds"),
        ({"time_limit_seconds": True}, "time_limit_seconds"),
        ({"time_limit_seconds": "30"}, "time_limit_seconds"),
        ({"auto_publish": "yes"}, "auto_publish"),
        ({"surprise": 1}, "surprise"),
        ({"reason": "x" * 201}, "reason"),
    ],
)
def test_bad_run_requests_name_the_field(client, sup, payload, field):
    r = client.post(f"/labs/{LAB}/solve-runs", json=payload, headers=sup)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(field in e["field"] for e in r.json()["errors"])


def test_a_preview_cannot_auto_publish_nor_be_published(client, app, sup):
    r = client.post(
        f"/labs/{LAB}/solve-runs", json={"mode": "preview", "auto_publish": True}, headers=sup
    )
    assert r.status_code == 422
    assert "preview" in r.json()["detail"]
    r = client.post(
        f"/labs/{LAB}/solve-runs", json={"mode": "preview", "time_limit_seconds": 1}, headers=sup
    )
    assert r.status_code == 202
    assert run_once(app.state.engine, "w-preview", policy="fifo")
    run = client.get(r.headers["Location"], headers=sup).json()
    assert run["status"] == "succeeded" and run["schedule_version"] is not None
    publish = client.post(f"/labs/{LAB}/schedules/{run['schedule_version']}:publish", headers=sup)
    assert publish.status_code == 409
    assert "preview" in publish.json()["detail"]
    assert client.get(f"/labs/{LAB}/schedules/current", headers=sup).status_code == 404


def test_runs_are_listed_and_scoped_to_their_lab(client, keymaker, admin, sup):
    listing = client.get(f"/labs/{LAB}/solve-runs", params={"limit": 1}, headers=sup).json()
    assert len(listing["items"]) == 1 and listing["next_cursor"]
    rest = client.get(
        f"/labs/{LAB}/solve-runs", params={"cursor": listing["next_cursor"]}, headers=sup
    ).json()
    assert rest["items"][0]["id"] > listing["items"][0]["id"]
    other = client.post(
        "/labs", json={"code": "runs-other", "name": "Other", "timezone": "UTC"}, headers=admin
    )
    assert other.status_code == 201
    run_id = listing["items"][0]["id"]
    assert client.get(f"/labs/runs-other/solve-runs/{run_id}", headers=admin).status_code == 404
    auditor = keymaker.headers("auditor", LAB)
    assert client.get(f"/labs/{LAB}/solve-runs/{run_id}", headers=auditor).status_code == 200
    assert client.post(f"/labs/{LAB}/solve-runs", json={}, headers=auditor).status_code == 403


def test_the_snapshot_export_is_a_valid_contract_document(client, sup):
    r = client.get(f"/labs/{LAB}/snapshot", headers=sup)
    assert r.status_code == 200
    snapshot = snapshot_from_json(r.json())
    assert snapshot.lab == LAB
    assert {e.id for e in snapshot.examiners} == {"E1", "E2"}
    assert len(snapshot.jobs) == 6
