"""No input is a 5xx: control characters, instants off the calendar, nulls where a value is
required, ids and cursors beyond what the database holds, enum filters, method and type slips.

Each case from the fuzzing reports is here as it was sent; every refusal is a problem+json 422
(or 404/405) naming the field, and nothing is stored.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import available_timezones

import pytest
from api_support import all_pages, case_payload, make_lab

from scheduler.worker import run_once

LAB = "bounds"
PROBLEM = "application/problem+json"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(7)]


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


NOW = datetime.now(UTC)
RECEIVED = _iso(NOW - timedelta(days=3))


def refused(response, status: int = 422, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert "Traceback" not in response.text
    if field is not None:  # listed in errors[] (or, for a domain error, as its field)
        fields = [e["field"] for e in body.get("errors", [])] + [body.get("field", "")]
        assert any(f == field or f.endswith(f".{field}") for f in fields), (field, body)
    return body


@pytest.fixture(scope="module")
def sup(client, admin, keymaker):
    make_lab(client, admin, LAB)
    headers = keymaker.headers("supervisor", LAB)
    r = client.put(
        f"/labs/{LAB}/examiners/E1", json={"skills": ["mobile"], "shifts": SHIFTS}, headers=headers
    )
    assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=headers)
    assert r.status_code == 201, r.text
    cases = [case_payload(f"C{n}") | {"received_at": RECEIVED} for n in range(1, 7)]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=headers)
    assert r.status_code == 200, r.text
    return headers


@pytest.fixture(scope="module")
def version(client, app, sup) -> int:
    """A solved version: acquire and process placed, every review left out (no reviewer)."""
    r = client.post(f"/labs/{LAB}/solve-runs", json={"time_limit_seconds": 2}, headers=sup)
    assert r.status_code == 202, r.text
    assert run_once(app.state.engine, "w-bounds")
    run = client.get(r.headers["Location"], headers=sup).json()
    assert run["status"] == "succeeded", run
    return int(run["schedule_version"])


def _case_count(client, sup) -> int:
    return len(all_pages(client, f"/labs/{LAB}/cases", sup))


# --- text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        ("/labs/{lab}", "PATCH", {"name": "North\x00"}, "name"),
        ("/labs/{lab}", "PATCH", {"timezone": "UTC\x00"}, "timezone"),
        (
            "/labs/{lab}/cases/NUL1",
            "PUT",
            {"priority": "P3", "received_at": RECEIVED, "note": "seized\x00"},
            "note",
        ),
        ("/labs/{lab}/examiners/E9", "PUT", {"display_name": "E\x00"}, "display_name"),
        ("/labs/{lab}/workstations/W9", "PUT", {"name": "bench\x1b[2J"}, "name"),
        (
            "/labs/{lab}/cases/NUL2",
            "PUT",
            {"priority": "P3", "received_at": RECEIVED, "note": "half a pair \ud800"},
            "note",
        ),
    ],
)
def test_text_with_a_nul_or_control_character_is_422(client, sup, path, method, body, field):
    # As a client's JSON encoder sends it: \u0000 and a lone \ud800 as escapes.
    content = json.dumps(body).encode()
    r = client.request(
        method,
        path.format(lab=LAB),
        content=content,
        headers={**sup, "Content-Type": "application/json"},
    )
    problem = refused(r, field=field)
    says = "unicode" if "half a pair" in str(body) else "control character"
    assert says in problem["detail"]


def test_a_nul_in_an_import_note_stores_nothing(client, sup):
    before = _case_count(client, sup)
    case = case_payload("NUL3") | {"received_at": RECEIVED, "note": "a\x00b"}
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": [case]}, headers=sup)
    refused(r, field="cases[0].note")
    assert _case_count(client, sup) == before


@pytest.mark.parametrize(
    "path",
    [
        "/labs/{lab}/jobs?case=C1%00",
        "/labs/{lab}/cases?priority=P1%00",
        "/audit-events?action=lab.create%00",
        "/labs/{lab}/priority-levels/P1%00",
    ],
)
def test_a_nul_in_a_query_or_path_is_422(client, sup, admin, path):
    method = "PUT" if "priority-levels" in path else "GET"
    body = {"name": "x", "rank": 9, "weight": 1, "target_start_hours": 1}
    r = client.request(
        method, path.format(lab=LAB), headers=admin, json=body if method == "PUT" else None
    )
    refused(r)


# --- instants ------------------------------------------------------------------------------------


def test_an_instant_off_the_calendar_is_422_not_an_overflow(client, sup):
    """The fuzzer's case: 500 OverflowError on both backends."""
    body = {"priority": "P3", "received_at": "9999-12-31T23:59:59-12:00"}
    problem = refused(
        client.put(f"/labs/{LAB}/cases/FAR", json=body, headers=sup), field="received_at"
    )
    assert "must not be after" in problem["detail"]
    case = case_payload("FAR2") | {"received_at": "9999-12-31T23:59:59-12:00"}
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": [case]}, headers=sup)
    refused(r, field="cases[0].received_at")
    assert client.get(f"/labs/{LAB}/cases/FAR", headers=sup).status_code == 404


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("received_at", _iso(NOW + timedelta(days=400)), "one day from now"),
        ("received_at", "1999-12-31T23:00:00Z", "before 2000-01-01"),
        ("legal_deadline_at", _iso(NOW + timedelta(days=365 * 30)), "10 years from now"),
        ("received_at", 0, "RFC 3339"),
        ("received_at", "0", "RFC 3339"),
        ("received_at", "2026-11-02T09:00:00", "offset"),
        ("received_at", "2026-11-02", "RFC 3339"),
        ("received_at", True, "RFC 3339"),
    ],
)
def test_instants_are_rfc3339_with_an_offset_inside_their_window(client, sup, field, value, says):
    body = {"priority": "P3", "received_at": RECEIVED, field: value}
    problem = refused(client.put(f"/labs/{LAB}/cases/WIN", json=body, headers=sup), field=field)
    assert says in problem["detail"]


def test_instants_inside_their_window_are_accepted(client, sup):
    body = {
        "priority": "P3",
        "received_at": _iso(NOW + timedelta(hours=2)),  # clocks differ a little
        "legal_deadline_at": (NOW + timedelta(days=365 * 5)).isoformat(),
    }
    r = client.put(f"/labs/{LAB}/cases/OK1", json=body, headers=sup)
    assert r.status_code in (200, 201), r.text


FAR_AHEAD = [_iso(NOW + timedelta(days=365 * 11)), "9999-12-31T23:59:59Z"]


@pytest.mark.parametrize("far", FAR_AHEAD, ids=["11-years", "year-9999"])
def test_every_planned_instant_is_at_most_ten_years_ahead(client, sup, far):
    """Absences, maintenance windows, pins and legal deadlines share the one window."""
    soon = _iso(NOW + timedelta(days=1))
    absence = {"kind": "leave", "starts_at": soon, "ends_at": far}
    problem = refused(
        client.post(f"/labs/{LAB}/examiners/E1/absences", json=absence, headers=sup),
        field="ends_at",
    )
    assert "must not be after" in problem["detail"]
    assert "(at most 10 years from now)" in problem["detail"]
    window = {"starts_at": far, "ends_at": far}
    refused(
        client.post(f"/labs/{LAB}/workstations/U1/maintenance-windows", json=window, headers=sup),
        field="starts_at",
    )
    job = client.get(f"/labs/{LAB}/jobs", params={"case": "C2"}, headers=sup).json()["items"][0]
    pin = {"start": far, "examiner": "E1", "workstation": "U1"}
    refused(client.post(f"/labs/{LAB}/jobs/{job['id']}:pin", json=pin, headers=sup), field="start")
    deadline = {"priority": "P3", "received_at": RECEIVED, "legal_deadline_at": far}
    refused(
        client.put(f"/labs/{LAB}/cases/FAR-D", json=deadline, headers=sup),
        field="legal_deadline_at",
    )
    assert client.get(f"/labs/{LAB}/cases/FAR-D", headers=sup).status_code == 404
    listed = client.get(f"/labs/{LAB}/examiners/E1/absences", headers=sup).json()["items"]
    assert all(a["ends_at"] < far for a in listed)
    assert client.get(f"/labs/{LAB}/jobs/{job['id']}", headers=sup).json()["pin"] is None


def test_a_device_arriving_next_year_is_422(client, sup):
    client.put(
        f"/labs/{LAB}/cases/DEV", json={"priority": "P3", "received_at": RECEIVED}, headers=sup
    )
    body = {"kind": "phone", "arrived_at": _iso(NOW + timedelta(days=365))}
    refused(
        client.put(f"/labs/{LAB}/cases/DEV/devices/D1", json=body, headers=sup), field="arrived_at"
    )


def test_a_number_is_not_a_pin_start(client, sup, version):
    """``"start": 0`` was taken as 1970-01-01."""
    job = client.get(f"/labs/{LAB}/jobs", params={"case": "C1"}, headers=sup).json()["items"][0]
    r = client.post(
        f"/labs/{LAB}/jobs/{job['id']}:pin", json={"start": 0, "examiner": "E1"}, headers=sup
    )
    refused(r, field="start")


@pytest.mark.parametrize("value", ["0", "1700000000", "2026-11-02", "9999-12-31T23:59:59-12:00"])
def test_a_window_filter_must_be_an_instant(client, sup, version, value):
    """``starts_before=0`` was taken as 1970-01-01."""
    path = f"/labs/{LAB}/schedules/{version}/assignments"
    refused(client.get(path, params={"starts_before": value}, headers=sup), field="starts_before")


def test_other_strict_values(client, sup):
    r = client.post(
        f"/labs/{LAB}/examiners/E1/exposure-logs",
        json={"day": 0, "minutes": 10, "severity": 1},
        headers=sup,
    )
    refused(r, field="day")
    r = client.post(
        f"/labs/{LAB}/examiners/E1/exposure-logs",
        json={"day": _iso(NOW)[:10], "minutes": 10, "severity": 1},
        headers=sup,
    )
    assert r.status_code == 201, r.text
    shifts = [{"weekday": 0, "starts": 28800, "ends": "16:00"}]
    refused(client.patch(f"/labs/{LAB}/examiners/E1", json={"shifts": shifts}, headers=sup))


# --- nulls ---------------------------------------------------------------------------------------


def test_a_null_timezone_is_422(client, sup):
    """The fuzzer's case: 500 TypeError in the labs service."""
    problem = refused(
        client.patch(f"/labs/{LAB}", json={"timezone": None}, headers=sup), field="timezone"
    )
    assert "not null" in problem["detail"]
    assert client.get(f"/labs/{LAB}", headers=sup).json()["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/labs/{lab}", {"name": None}),
        ("/labs/{lab}", {"slot_minutes": None}),
        ("/labs/{lab}/examiners/E1", {"display_name": None}),
        ("/labs/{lab}/examiners/E1", {"active": None}),
        ("/labs/{lab}/examiners/E1", {"skills": None}),
        ("/labs/{lab}/examiners/E1", {"max_severity": None}),
        ("/labs/{lab}/workstations/U1", {"capacity": None}),
        ("/labs/{lab}/cases/C1", {"received_at": None}),
        ("/labs/{lab}/cases/C1", {"status": None}),
    ],
)
def test_patch_fields_that_are_required_refuse_null(client, sup, path, body):
    (field,) = body
    refused(client.patch(path.format(lab=LAB), json=body, headers=sup), field=field)


def test_patch_fields_that_clear_still_take_null(client, sup):
    r = client.patch(f"/labs/{LAB}/examiners/E1", json={"weekly_cap_minutes": None}, headers=sup)
    assert r.status_code == 200 and r.json()["weekly_cap_minutes"] is None, r.text
    r = client.patch(f"/labs/{LAB}/cases/C1", json={"legal_deadline_at": None}, headers=sup)
    assert r.status_code == 200, r.text


def test_the_schema_says_which_patch_fields_take_null(app):
    schemas = app.openapi()["components"]["schemas"]
    lab = schemas["LabPatch"]["properties"]
    assert lab["timezone"].get("type") == "string" and "anyOf" not in lab["timezone"]
    cap = schemas["ExaminerPatch"]["properties"]["weekly_cap_minutes"]
    assert {"type": "null"} in cap["anyOf"]


# --- ids, cursors and pages ----------------------------------------------------------------------


def _cursor(*key: int) -> str:
    """A cursor as the API writes one: each integer 9 bytes big-endian, in base64url."""
    raw = b"".join(part.to_bytes(9, "big") for part in key)
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("job_id", [2**31, 2**63, 2**64 + 5])
def test_ids_beyond_the_database_are_422(client, sup, job_id):
    refused(client.get(f"/labs/{LAB}/jobs/{job_id}", headers=sup), field="job_id")
    refused(client.get(f"/labs/{LAB}/solve-runs/{job_id}", headers=sup), field="run_id")


def test_the_largest_id_is_a_plain_404(client, sup):
    refused(client.get(f"/labs/{LAB}/jobs/{2**31 - 1}", headers=sup), 404)
    refused(client.get(f"/labs/{LAB}/schedules/{2**31 - 1}", headers=sup), 404)
    refused(client.get(f"/labs/{LAB}/schedules/{2**31}", headers=sup), 404)
    refused(client.get(f"/labs/{LAB}/schedules/{2**31}/unscheduled", headers=sup), 404)


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(2**63),  # beyond int64: its second digit is past "H"
        _cursor(1, 2),  # two parts where the list's key has one
        _cursor(5)[:-1],
        _cursor(5) + "A",
        _cursor(5).replace("A", "=", 1),
        base64.urlsafe_b64encode(b"12").decode(),  # the old, decimal form
        "!!!",
        "0" * 64,
    ],
)
def test_forged_cursors_are_422(client, sup, cursor):
    for path in (f"/labs/{LAB}/jobs", f"/labs/{LAB}/cases", "/audit-events"):
        refused(client.get(path, params={"cursor": cursor}, headers=sup), field="cursor")


def test_the_cursor_pattern_admits_exactly_the_cursors(client, sup):
    """Every string the documented pattern admits is a position in the list, so it is answered."""
    spec = client.get("/openapi.json").json()
    params = spec["paths"]["/labs/{lab}/jobs"]["get"]["parameters"]
    (cursor,) = [p for p in params if p["name"] == "cursor"]
    pattern = next(s["pattern"] for s in cursor["schema"]["anyOf"] if "pattern" in s)
    for key in (0, 1, 2**31 - 1, 2**31, 2**63 - 1):
        assert re.fullmatch(pattern, _cursor(key))
    assert not re.fullmatch(pattern, _cursor(2**63))
    whole = all_pages(client, f"/labs/{LAB}/jobs", sup)
    first = client.get(f"/labs/{LAB}/jobs", params={"limit": 1}, headers=sup).json()
    assert first["next_cursor"] and re.fullmatch(pattern, first["next_cursor"])
    after_first = client.get(
        f"/labs/{LAB}/jobs", params={"cursor": _cursor(whole[0]["id"]), "limit": 500}, headers=sup
    ).json()
    assert after_first["items"] == whole[1:]


@pytest.mark.parametrize("key", [2**31 - 1, 2**31, 2**63 - 1])
def test_a_cursor_past_every_id_is_the_end_of_the_list(client, sup, key):
    for path in (f"/labs/{LAB}/jobs", f"/labs/{LAB}/cases", "/audit-events"):
        r = client.get(path, params={"cursor": _cursor(key)}, headers=sup)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == [] and r.json()["next_cursor"] is None


def test_unscheduled_reasons_page_through_to_the_end(client, sup, version):
    """The fuzzer's case: 500 whenever more rows matched than one page."""
    path = f"/labs/{LAB}/schedules/{version}/unscheduled"
    first = client.get(path, params={"limit": 2}, headers=sup)
    assert first.status_code == 200, first.text
    assert len(first.json()["items"]) == 2 and first.json()["next_cursor"]
    paged = all_pages(client, path, sup, limit=2)
    whole = client.get(path, params={"limit": 500}, headers=sup).json()
    assert whole["next_cursor"] is None
    assert [u["job_id"] for u in paged] == [u["job_id"] for u in whole["items"]]
    assert len(paged) >= 6  # every review (no examiner has the skill)
    assert len({u["job_id"] for u in paged}) == len(paged)


def test_reason_filter_names_the_allowed_values(client, sup, version):
    path = f"/labs/{LAB}/schedules/{version}/unscheduled"
    problem = refused(client.get(path, params={"reason": "bogus"}, headers=sup), field="reason")
    assert "no_eligible_examiner" in problem["detail"]
    r = client.get(path, params={"reason": "no_eligible_examiner"}, headers=sup)
    assert r.status_code == 200
    assert r.json()["items"] and {u["reason"] for u in r.json()["items"]} == {
        "no_eligible_examiner"
    }


def test_assignments_are_a_page_that_honours_limit(client, sup, version):
    path = f"/labs/{LAB}/schedules/{version}/assignments"
    first = client.get(path, params={"limit": 3}, headers=sup).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    paged = all_pages(client, path, sup, limit=3)
    whole = client.get(path, params={"limit": 500}, headers=sup).json()
    assert whole["next_cursor"] is None and len(whole["items"]) >= 12
    assert paged == whole["items"]
    keys = [(a["starts_at"], a["job_id"]) for a in paged]
    assert keys == sorted(keys)
    window = all_pages(client, path, sup, limit=2, starts_before=paged[4]["starts_at"])
    assert window == [a for a in paged if a["starts_at"] < paged[4]["starts_at"]]


def test_an_id_cursor_is_not_an_assignments_cursor(client, sup, version):
    path = f"/labs/{LAB}/schedules/{version}/assignments"
    refused(client.get(path, params={"cursor": _cursor(5)}, headers=sup), field="cursor")
    refused(client.get(path, params={"cursor": _cursor(1, 2, 3)}, headers=sup), field="cursor")


@pytest.mark.parametrize("key", [(2**63 - 1, 1), (0, 2**63 - 1), (2**63 - 1, 2**63 - 1)])
def test_an_assignments_cursor_past_the_last_start_is_the_end(client, sup, version, key):
    path = f"/labs/{LAB}/schedules/{version}/assignments"
    r = client.get(path, params={"cursor": _cursor(*key)}, headers=sup)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    whole = all_pages(client, path, sup)
    assert items == ([] if key[0] else whole)


# --- methods -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize(
    "path",
    [
        "/labs/{lab}/jobs/3:pin",
        "/labs/{lab}/jobs/3:done",
        "/labs/{lab}/cases/C1:escalate",
        "/labs/{lab}/solve-runs/1:cancel",
        "/labs/{lab}/schedules/1:publish",
    ],
)
def test_another_method_on_an_action_path_is_405(client, sup, method, path):
    r = client.request(method, path.format(lab=LAB), headers=sup)
    refused(r, 405)
    assert r.headers["Allow"] == "POST"


def test_the_resource_paths_beside_the_actions_still_route(client, sup):
    assert client.get(f"/labs/{LAB}/cases/C1", headers=sup).status_code == 200
    refused(client.get(f"/labs/{LAB}/jobs/abc", headers=sup), field="job_id")
    refused(client.get(f"/labs/{LAB}/cases/bad%20ref", headers=sup), field="ref")


# --- rules the schema states ---------------------------------------------------------------------


def test_the_schema_lists_exactly_the_timezones_a_lab_may_have(app, client, sup):
    schemas = app.openapi()["components"]["schemas"]
    names = schemas["LabCreate"]["properties"]["timezone"]["enum"]
    assert names == sorted(available_timezones()) and "Europe/London" in names
    assert schemas["LabPatch"]["properties"]["timezone"]["enum"] == names
    for name in ("Pacific/Chatham", "Etc/GMT+5"):
        r = client.patch(f"/labs/{LAB}", json={"timezone": name}, headers=sup)
        assert r.status_code == 200 and r.json()["timezone"] == name, r.text
    for name in ("0", "Mars/Olympus", "europe/london", "posixrules"):
        r = client.patch(f"/labs/{LAB}", json={"timezone": name}, headers=sup)
        refused(r, field="timezone")
    assert client.patch(f"/labs/{LAB}", json={"timezone": "UTC"}, headers=sup).status_code == 200


def test_plain_text_fields_state_the_characters_they_refuse(app, client, sup):
    """The schema's pattern and the server's check refuse the same control characters."""
    name = app.openapi()["components"]["schemas"]["LabPatch"]["properties"]["name"]
    for text in ("North\tLab", "Línea\nDos", "\U0001f52c lab"):
        assert re.fullmatch(name["pattern"], text)
        assert client.patch(f"/labs/{LAB}", json={"name": text}, headers=sup).status_code == 200
    for text in ("a\x00b", "a\x7fb", "\x1b[31m"):
        assert not re.fullmatch(name["pattern"], text)
        refused(client.patch(f"/labs/{LAB}", json={"name": text}, headers=sup), field="name")


def test_the_schema_says_which_keys_name_an_examiner(app, client, admin):
    rule = app.openapi()["components"]["schemas"]["KeyCreate"]
    assert rule["if"]["properties"]["role"] == {"const": "examiner"}
    assert rule["then"]["required"] == ["examiner", "lab"]
    assert rule["else"]["properties"]["examiner"] == {"type": "null"}
    for body in (
        {"role": "examiner", "name": "x", "lab": LAB},  # then: examiner missing
        {"role": "admin", "name": "x", "lab": LAB, "examiner": "E1"},  # else: examiner given
        {"role": "admin", "name": "x", "examiner": "E1"},
    ):
        assert client.post("/api-keys", json=body, headers=admin).status_code == 422, body
