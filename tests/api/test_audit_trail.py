"""Every mutation writes an audit event whose actor is the calling key's prefix."""

from __future__ import annotations

import pytest
from api_support import case_payload, make_lab

LAB = "trail"
CASE = {"priority": "P4", "received_at": "2026-11-02T09:00:00+00:00"}
WINDOW = {"starts_at": "2026-12-02T08:00:00+00:00", "ends_at": "2026-12-02T12:00:00+00:00"}
L = f"/labs/{LAB}"

# (method, url, body, expected action); run in order by one supervisor key.
MUTATIONS = [
    ("PATCH", L, {"slot_minutes": 30}, "lab.update"),
    (
        "PUT",
        f"{L}/priority-levels/P6",
        {"name": "x", "rank": 6, "weight": 1, "target_start_hours": 10},
        "priority_level.upsert",
    ),
    ("PUT", f"{L}/examiners/E1", {"skills": ["mobile"]}, "examiner.upsert"),
    ("PATCH", f"{L}/examiners/E1", {"active": False}, "examiner.upsert"),
    (
        "PUT",
        f"{L}/examiners/E1/shifts",
        [{"weekday": 2, "starts": "08:00", "ends": "16:00"}],
        "examiner.upsert",
    ),
    ("POST", f"{L}/examiners/E1/absences", {"kind": "leave", **WINDOW}, "absence.create"),
    ("DELETE", f"{L}/examiners/E1/absences/{{id}}", None, "absence.delete"),
    (
        "POST",
        f"{L}/examiners/E1/exposure-logs",
        {"day": "2026-11-30", "minutes": 60, "severity": 1},
        "exposure_log.create",
    ),
    ("PUT", f"{L}/workstations/W1", {"capabilities": ["ufed"]}, "workstation.upsert"),
    ("PATCH", f"{L}/workstations/W1", {"capacity": 2}, "workstation.upsert"),
    ("POST", f"{L}/workstations/W1/maintenance-windows", WINDOW, "maintenance.create"),
    ("DELETE", f"{L}/workstations/W1/maintenance-windows/{{id}}", None, "maintenance.delete"),
    ("PUT", f"{L}/licence-pools/axiom", {"capacity": 2}, "licence_pool.upsert"),
    ("PUT", f"{L}/cases/C-1", CASE, "case.upsert"),
    ("PATCH", f"{L}/cases/C-1", {"note": "court date set"}, "case.upsert"),
    ("PUT", f"{L}/cases/C-2", CASE, "case.upsert"),
    ("PUT", f"{L}/cases/C-2", {**CASE, "priority": "P3"}, "case.escalate"),
    ("POST", f"{L}/cases/C-1/links", {"case": "C-2"}, "case.link"),
    ("DELETE", f"{L}/cases/C-1/links/C-2", None, "case.unlink"),
    ("POST", f"{L}/cases/C-1/flags", {"kind": "classifier"}, "case.flag"),
    ("POST", f"{L}/cases/C-1:escalate", {"priority": "P1"}, "case.escalate"),
    (
        "PUT",
        f"{L}/cases/C-1/devices/D1",
        {"kind": "storage", "arrived_at": "2026-11-03T09:00:00+00:00"},
        "device.upsert",
    ),
    (
        "PUT",
        f"{L}/cases/C-1/devices/D1/jobs/acquire",
        {"stage": "acquire", "attended_minutes": 45},
        "job.upsert",
    ),
    (
        "POST",
        f"{L}/jobs/{{job}}:pin",
        {"start": "2026-12-01T09:00:00+00:00", "examiner": "E1"},
        "job.pin",
    ),
    ("POST", f"{L}/jobs/{{job}}:unpin", None, "job.unpin"),
    ("POST", f"{L}/jobs/{{job}}:hold", None, "job.on_hold"),
    ("POST", f"{L}/jobs/{{job}}:resume", None, "job.pending"),
    ("POST", f"{L}/jobs/{{job}}:start", None, "job.in_progress"),
    ("POST", f"{L}/jobs/{{job}}:done", None, "job.done"),
    ("POST", f"{L}/cases:import", {"cases": [case_payload("C-3")]}, "case.import"),
    ("DELETE", f"{L}/cases/C-2", None, "case.delete"),
]


@pytest.fixture(scope="module")
def keys(client, admin, keymaker):
    make_lab(client, admin, LAB)
    return keymaker.headers("supervisor", lab=LAB), keymaker.headers("auditor", lab=LAB)


def test_every_mutation_is_audited_with_the_key_prefix(client, keys):
    supervisor, auditor = keys
    actor = supervisor["X-API-Key"].split("_")[1]
    ids: dict[str, object] = {}
    seen = 0
    for method, url, body, action in MUTATIONS:
        url = url.format(**ids)
        kwargs = {"json": body} if body is not None else {}
        response = client.request(method, url, headers=supervisor, **kwargs)
        assert response.status_code in (200, 201, 204), (method, url, response.text)
        if response.status_code != 204:
            payload = response.json()
            if "id" in payload and "absences" in url:
                ids["id"] = payload["id"]
            if "id" in payload and "maintenance" in url:
                ids["id"] = payload["id"]
            if "/jobs/acquire" in url:
                ids["job"] = payload["id"]
        events = client.get(f"{L}/audit-events?actor={actor}&limit=500", headers=auditor).json()
        assert len(events["items"]) > seen, f"{method} {url} wrote no audit event"
        newest = events["items"][-1]
        assert newest["action"] == action, (method, url)
        assert newest["actor"] == actor and newest["lab"] == LAB
        assert newest["after_digest"] or newest["before_digest"]
        seen = len(events["items"])


def test_reads_write_no_audit_events(client, keys):
    _, auditor = keys
    before = client.get(f"{L}/audit-events?limit=500", headers=auditor).json()["items"]
    for url in (L, f"{L}/cases", f"{L}/jobs", f"{L}/examiners", f"{L}/workstations"):
        assert client.get(url, headers=auditor).status_code == 200
    after = client.get(f"{L}/audit-events?limit=500", headers=auditor).json()["items"]
    assert after == before


def test_audit_events_filter_and_scope(client, keys, admin):
    _, auditor = keys
    escalations = client.get(f"{L}/audit-events?action=case.escalate", headers=auditor).json()
    # C-2 by PUT; C-1 by its link to C-2, its classifier flag and :escalate.
    assert [e["action"] for e in escalations["items"]] == ["case.escalate"] * 4
    assert len({e["entity_id"] for e in escalations["items"]}) == 2
    everywhere = client.get("/audit-events?action=lab.create&limit=500", headers=admin).json()
    assert LAB in {e["lab"] for e in everywhere["items"]}
    scoped = client.get("/audit-events?limit=500", headers=auditor).json()["items"]
    assert scoped and {e["lab"] for e in scoped} == {LAB}
