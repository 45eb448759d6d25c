"""The resource routes end to end: what is written is what is read back, lists page by cursor."""

from __future__ import annotations

import pytest
from api_support import case_payload, make_lab

LAB = "res"
CASE = {"priority": "P4", "received_at": "2026-11-02T09:00:00+00:00"}
SHIFTS = [
    {"weekday": 0, "starts": "08:00", "ends": "12:00"},
    {"weekday": 0, "starts": "13:00", "ends": "16:30"},
]


@pytest.fixture(scope="module")
def sup(client, admin, keymaker):
    make_lab(client, admin, LAB)
    return keymaker.headers("supervisor", lab=LAB)


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def all_pages(client, url, headers, limit=2):
    items, cursor, pages = [], None, 0
    while True:
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = ok(client.get(f"{url}?{query}", headers=headers))
        items.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages


def test_lab_settings_and_priority_levels(client, sup):
    lab = ok(client.patch(f"/labs/{LAB}", json={"planning_horizon_days": 5}, headers=sup))
    assert lab["planning_horizon_days"] == 5
    levels = ok(client.get(f"/labs/{LAB}/priority-levels", headers=sup))["items"]
    assert [lv["code"] for lv in levels] == ["P1", "P2", "P3", "P4", "P5"]
    p6 = {"name": "Backlog", "rank": 6, "weight": 1, "target_start_hours": 8760}
    assert ok(client.put(f"/labs/{LAB}/priority-levels/P6", json=p6, headers=sup))["rank"] == 6
    clash = {**p6, "rank": 1}
    assert client.put(f"/labs/{LAB}/priority-levels/P7", json=clash, headers=sup).status_code == 409


def test_examiner_round_trip_and_partial_update(client, sup):
    body = {
        "display_name": "A. Reyes",
        "skills": ["mobile", "review"],
        "shifts": SHIFTS,
        "daily_cap_minutes": 180,
        "exposure_cutoff": "15:00",
        "max_severity": 2,
    }
    created = ok(client.put(f"/labs/{LAB}/examiners/E1", json=body, headers=sup), 201)
    assert created["skills"] == ["mobile", "review"]
    assert created["shifts"][1] == {"weekday": 0, "starts": "13:00:00", "ends": "16:30:00"}
    assert (created["daily_cap_minutes"], created["max_severity"]) == (180, 2)
    patched = ok(client.patch(f"/labs/{LAB}/examiners/E1", json={"active": False}, headers=sup))
    assert patched["active"] is False
    assert patched["skills"] == ["mobile", "review"]  # untouched by the patch
    assert patched["exposure_cutoff"] == "15:00:00"
    uncapped = ok(
        client.patch(f"/labs/{LAB}/examiners/E1", json={"weekly_cap_minutes": None}, headers=sup)
    )
    assert uncapped["weekly_cap_minutes"] is None
    assert client.patch(f"/labs/{LAB}/examiners/E404", json={}, headers=sup).status_code == 404


@pytest.mark.parametrize(
    "shifts",
    [
        [
            {"weekday": 0, "starts": "08:00", "ends": "12:00"},
            {"weekday": 0, "starts": "11:00", "ends": "13:00"},
        ],
        [{"weekday": 7, "starts": "08:00", "ends": "12:00"}],
        [{"weekday": 1, "starts": "12:00", "ends": "08:00"}],
        [{"weekday": 1, "starts": "08:00+02:00", "ends": "12:00"}],
    ],
    ids=["overlap", "weekday", "backwards", "offset"],
)
def test_bad_shifts_are_422(client, sup, shifts):
    response = client.put(f"/labs/{LAB}/examiners/E2", json={"shifts": shifts}, headers=sup)
    assert response.status_code == 422, response.text
    assert client.get(f"/labs/{LAB}/examiners/E2", headers=sup).status_code == 404


def test_shifts_absences_and_exposure(client, sup):
    ok(client.put(f"/labs/{LAB}/examiners/E3", json={}, headers=sup), 201)
    shifts = ok(client.put(f"/labs/{LAB}/examiners/E3/shifts", json=SHIFTS, headers=sup))
    assert len(shifts) == 2
    assert ok(client.get(f"/labs/{LAB}/examiners/E3/shifts", headers=sup)) == shifts

    absence = {
        "kind": "counselling",
        "starts_at": "2026-12-01T14:00:00+00:00",
        "ends_at": "2026-12-01T15:00:00+00:00",
    }
    made = ok(client.post(f"/labs/{LAB}/examiners/E3/absences", json=absence, headers=sup), 201)
    listed = ok(client.get(f"/labs/{LAB}/examiners/E3/absences", headers=sup))["items"]
    assert [a["id"] for a in listed] == [made["id"]]
    backwards = {**absence, "ends_at": "2026-12-01T13:00:00+00:00"}
    assert (
        client.post(f"/labs/{LAB}/examiners/E3/absences", json=backwards, headers=sup).status_code
        == 422
    )
    url = f"/labs/{LAB}/examiners/E3/absences/{made['id']}"
    assert client.delete(url, headers=sup).status_code == 204
    assert client.delete(url, headers=sup).status_code == 404

    log = {"day": "2026-11-30", "minutes": 90, "severity": 3}
    ok(client.post(f"/labs/{LAB}/examiners/E3/exposure-logs", json=log, headers=sup), 201)
    too_long = {**log, "minutes": 1441}
    assert (
        client.post(
            f"/labs/{LAB}/examiners/E3/exposure-logs", json=too_long, headers=sup
        ).status_code
        == 422
    )
    logs = ok(client.get(f"/labs/{LAB}/examiners/E3/exposure-logs", headers=sup))["items"]
    assert [(e["minutes"], e["severity"]) for e in logs] == [(90, 3)]


def test_cursor_pages_cover_every_item_once(client, sup):
    for i in range(7):
        ok(client.put(f"/labs/{LAB}/workstations/PG{i}", json={}, headers=sup), 201)
    items, pages = all_pages(client, f"/labs/{LAB}/workstations", sup, limit=3)
    refs = [w["external_ref"] for w in items]
    assert len(refs) == len(set(refs))
    assert {f"PG{i}" for i in range(7)} <= set(refs)
    assert pages == -(-len(refs) // 3)


def test_workstations_maintenance_and_pools(client, sup):
    body = {"name": "GrayKey", "capacity": 2, "capabilities": ["graykey"]}
    made = ok(client.put(f"/labs/{LAB}/workstations/GK1", json=body, headers=sup), 201)
    assert (made["capacity"], made["capabilities"]) == (2, ["graykey"])
    patched = ok(client.patch(f"/labs/{LAB}/workstations/GK1", json={"active": False}, headers=sup))
    assert patched["active"] is False and patched["capabilities"] == ["graykey"]
    assert (
        client.put(f"/labs/{LAB}/workstations/GK2", json={"capacity": 0}, headers=sup).status_code
        == 422
    )
    window = {"starts_at": "2026-12-02T08:00:00+00:00", "ends_at": "2026-12-02T12:00:00+00:00"}
    made_window = ok(
        client.post(f"/labs/{LAB}/workstations/GK1/maintenance-windows", json=window, headers=sup),
        201,
    )
    windows = ok(client.get(f"/labs/{LAB}/workstations/GK1/maintenance-windows", headers=sup))
    assert [w["id"] for w in windows["items"]] == [made_window["id"]]
    url = f"/labs/{LAB}/workstations/GK1/maintenance-windows/{made_window['id']}"
    assert client.delete(url, headers=sup).status_code == 204

    ok(client.put(f"/labs/{LAB}/licence-pools/axiom", json={"capacity": 3}, headers=sup))
    ok(client.put(f"/labs/{LAB}/licence-pools/axiom", json={"capacity": 4}, headers=sup))
    assert ok(client.get(f"/labs/{LAB}/licence-pools/axiom", headers=sup))["capacity"] == 4
    pools = ok(client.get(f"/labs/{LAB}/licence-pools", headers=sup))["items"]
    assert [p["name"] for p in pools] == ["axiom"]
    assert (
        client.put(f"/labs/{LAB}/licence-pools/x", json={"capacity": True}, headers=sup).status_code
        == 422
    )


def test_cases_flags_links_and_escalation(client, sup):
    for ref in ("K-1", "K-2"):
        ok(client.put(f"/labs/{LAB}/cases/{ref}", json=CASE, headers=sup), 201)
    flag = ok(
        client.post(f"/labs/{LAB}/cases/K-1/flags", json={"kind": "hash_match"}, headers=sup), 201
    )
    assert flag["kind"] == "hash_match"
    assert (
        client.post(
            f"/labs/{LAB}/cases/K-1/flags", json={"kind": "rumour"}, headers=sup
        ).status_code
        == 422
    )
    ok(client.post(f"/labs/{LAB}/cases/K-1/links", json={"case": "K-2"}, headers=sup), 201)
    assert [ln["case"] for ln in ok(client.get(f"/labs/{LAB}/cases/K-2/links", headers=sup))] == [
        "K-1"
    ]
    assert (
        client.post(f"/labs/{LAB}/cases/K-1/links", json={"case": "K-1"}, headers=sup).status_code
        == 422
    )
    case = ok(client.get(f"/labs/{LAB}/cases/K-1", headers=sup))
    assert [f["kind"] for f in case["flags"]] == ["hash_match"]
    assert [ln["case"] for ln in case["links"]] == ["K-2"]

    escalated = ok(
        client.post(f"/labs/{LAB}/cases/K-1:escalate", json={"priority": "P2"}, headers=sup)
    )
    assert escalated["priority"] == "P2"
    lower = client.post(f"/labs/{LAB}/cases/K-1:escalate", json={"priority": "P3"}, headers=sup)
    assert lower.status_code == 409
    assert (
        client.post(
            f"/labs/{LAB}/cases/K-1:escalate", json={"priority": "P0"}, headers=sup
        ).status_code
        == 404
    )

    assert client.delete(f"/labs/{LAB}/cases/K-1/links/K-2", headers=sup).status_code == 204
    assert ok(client.get(f"/labs/{LAB}/cases/K-1/links", headers=sup)) == []

    closed = ok(client.patch(f"/labs/{LAB}/cases/K-2", json={"status": "closed"}, headers=sup))
    # K-1's hash match raised it to P3; the link to K-1 raised K-2 to P3 as well.
    assert closed["status"] == "closed" and closed["priority"] == "P3"
    listed = ok(client.get(f"/labs/{LAB}/cases?status=closed", headers=sup))["items"]
    assert "K-2" in [c["external_ref"] for c in listed] and "K-1" not in [
        c["external_ref"] for c in listed
    ]
    by_level = ok(client.get(f"/labs/{LAB}/cases?priority=P2", headers=sup))["items"]
    assert [c["external_ref"] for c in by_level] == ["K-1"]


def test_devices_and_jobs(client, sup):
    ok(client.put(f"/labs/{LAB}/examiners/EJ", json={"skills": ["mobile"]}, headers=sup), 201)
    ok(
        client.put(f"/labs/{LAB}/workstations/UF1", json={"capabilities": ["ufed"]}, headers=sup),
        201,
    )
    ok(client.put(f"/labs/{LAB}/cases/J-1", json=CASE, headers=sup), 201)
    device = {"kind": "phone", "arrived_at": "2026-11-03T09:00:00+00:00", "locked": True}
    made = ok(client.put(f"/labs/{LAB}/cases/J-1/devices/D1", json=device, headers=sup), 201)
    assert made["locked"] is True and made["jobs"] == []
    base = f"/labs/{LAB}/cases/J-1/devices/D1/jobs"
    unlock = {"stage": "unlock", "attended_minutes": 30, "machine_minutes": 480}
    ok(client.put(f"{base}/unlock", json=unlock, headers=sup), 201)
    acquire = {
        "stage": "acquire",
        "attended_minutes": 60,
        "skills": ["mobile"],
        "after": ["unlock"],
    }
    job = ok(client.put(f"{base}/acquire", json=acquire, headers=sup), 201)
    assert job["after"] == ["D1/unlock"] and job["case"] == "J-1"
    cycle = {"stage": "unlock", "after": ["D1/acquire"]}
    assert client.put(f"{base}/unlock", json=cycle, headers=sup).status_code == 422
    missing = {"stage": "review", "after": ["D9/acquire"]}
    response = client.put(f"{base}/review", json=missing, headers=sup)
    assert response.status_code == 422 and response.json()["field"] == "after[0]"
    assert [
        j["external_ref"]
        for j in ok(client.get(f"/labs/{LAB}/cases/J-1/devices/D1", headers=sup))["jobs"]
    ] == ["unlock", "acquire"]

    url = f"/labs/{LAB}/jobs/{job['id']}"
    pin = {"start": "2026-12-01T09:00:00+00:00", "examiner": "EJ", "workstation": "UF1"}
    pinned = ok(client.post(f"{url}:pin", json=pin, headers=sup))
    assert pinned["pin"] == {
        "examiner": "EJ",
        "workstation": "UF1",
        "start": "2026-12-01T09:00:00Z",
    }
    assert (
        client.post(f"{url}:pin", json={**pin, "examiner": "E404"}, headers=sup).status_code == 404
    )
    assert ok(client.post(f"{url}:unpin", headers=sup))["pin"] is None
    assert ok(client.post(f"{url}:hold", headers=sup))["status"] == "on_hold"
    assert ok(client.post(f"{url}:resume", headers=sup))["status"] == "pending"
    assert ok(client.post(f"{url}:start", headers=sup))["status"] == "in_progress"
    assert client.delete(f"/labs/{LAB}/cases/J-1", headers=sup).status_code == 409
    assert ok(client.post(f"{url}:done", headers=sup))["status"] == "done"
    assert client.post(f"{url}:resume", headers=sup).status_code == 409
    pending = ok(client.get(f"/labs/{LAB}/jobs?status=pending&case=J-1", headers=sup))["items"]
    assert [j["external_ref"] for j in pending] == ["unlock"]


def test_deleting_an_untouched_case_removes_its_work(client, sup, admin):
    imported = client.post(
        f"/labs/{LAB}/cases:import", json={"cases": [case_payload("GONE-1")]}, headers=sup
    )
    assert imported.status_code == 200
    assert len(ok(client.get(f"/labs/{LAB}/jobs?case=GONE-1", headers=sup))["items"]) == 3
    assert client.delete(f"/labs/{LAB}/cases/GONE-1", headers=sup).status_code == 204
    assert ok(client.get(f"/labs/{LAB}/jobs?case=GONE-1", headers=sup))["items"] == []
