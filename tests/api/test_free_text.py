"""Notes cannot identify anyone: what the check refuses, what it lets through, and that every
note-bearing route uses it (one validator, in api/schemas/free_text.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import case_payload, make_lab

from api.schemas.free_text import identifying_reason

LAB = "notes"
RECEIVED = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

IDENTIFYING = [
    ("contact j.smith@example.org", "e-mail"),
    ("mother on +44 20 7946 0958", "phone"),
    ("call 020 7946 0958", "phone"),
    ("mobile 07700900123", "phone"),
    ("(555) 123-4567 after 6", "phone"),
    ("DOB 12/03/2015", "date of birth"),
    ("d.o.b. 2015-03-12", "date of birth"),
    ("born on 3 March 2015", "date of birth"),
    ("date of birth unknown", "date of birth"),
    ("name: Anna", "personal name"),
    ("Full name = A Smith", "personal name"),
    ("Mr Jones brought it in", "personal name"),
    ("handed over by Mrs. Patel", "personal name"),
    ("victim: Anna", "personal name"),
    ("suspect is Kowalski", "personal name"),
    ("aged 9", "age"),
    ("victim age 9", "age"),
    ("9-year-old in images", "age"),
    ("child 9 years old", "age"),
    ("girl 12yo", "age"),
]

HARMLESS = [
    "",
    "CR-2026-0403",
    "linked via CR-2026-0403 and CR-2025-1177",
    "hash match 3 files",
    "hash match 1,204 files in /DCIM",
    "Samsung SM-G991B 128GB, screen cracked, passcode unknown",
    "iPhone 12 Pro, IMEI 356938035643809, in Faraday bag",
    "Seized 2026-03-04 at 14:30; court 2026-05-12",
    "classifier score 0.97 on 12 images",
    "NCMEC report 123456789",
    "file name: IMG_0042.jpg",
    "device name: DESKTOP-7F3K2",
    "message age 3 days",
    "partition 2 of 3, 931 GB",
    "escalated by supervisor after linked report",
    "GrayKey unlock needed (iOS 17.4)",
    "Master boot record damaged",
    "suspect device imaged twice",
    "victim device returned to police",
]


@pytest.mark.parametrize(("text", "kind"), IDENTIFYING)
def test_identifying_notes_are_named(text, kind):
    reason = identifying_reason(text)
    assert reason is not None and kind in reason, (text, reason)


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_lab_notes_pass(text):
    assert identifying_reason(text) is None


@pytest.fixture(scope="module")
def sup(client, admin, keymaker):
    make_lab(client, admin, LAB)
    return keymaker.headers("supervisor", LAB)


def test_the_issue_note_is_refused_and_not_stored(client, sup):
    """The report's case: a note holding a name, a date of birth and a victim's age was stored."""
    note = "Victim Anna K, DOB 03/04/2015, aged 9"
    body = {"priority": "P3", "received_at": RECEIVED, "note": note}
    r = client.put(f"/labs/{LAB}/cases/C1", json=body, headers=sup)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["errors"][0]["field"] == "note"
    assert "identify" in problem["errors"][0]["message"]
    assert client.get(f"/labs/{LAB}/cases/C1", headers=sup).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/cases/C2", {"note": "contact a@b.org"}, "note"),
        ("POST", "/cases/C2/flags", {"kind": "manual", "note": "aged 9"}, "note"),
        ("POST", "/cases/C2:escalate", {"priority": "P1", "reason": "Mr Jones called"}, "reason"),
        ("POST", "/cases/C2/links", {"case": "C3", "reason": "DOB matches"}, "reason"),
        ("POST", "/solve-runs", {"reason": "for Dr Smith"}, "reason"),
    ],
)
def test_every_note_route_uses_the_check(client, sup, method, path, body, field):
    for ref in ("C2", "C3"):
        client.put(
            f"/labs/{LAB}/cases/{ref}",
            json={"priority": "P3", "received_at": RECEIVED},
            headers=sup,
        )
    r = client.request(method, f"/labs/{LAB}{path}", json=body, headers=sup)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


def test_an_import_lists_the_identifying_note(client, sup):
    cases = [
        case_payload("I1") | {"received_at": RECEIVED, "note": "hash match 3 files"},
        case_payload("I2") | {"received_at": RECEIVED, "note": "call 07700 900123"},
    ]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=sup)
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == "cases[1].note" and "phone number" in error["message"]
    assert client.get(f"/labs/{LAB}/cases/I1", headers=sup).status_code == 404


def test_a_harmless_note_is_stored(client, sup):
    body = {"priority": "P3", "received_at": RECEIVED, "note": "linked via CR-2026-0403"}
    r = client.put(f"/labs/{LAB}/cases/C4", json=body, headers=sup)
    assert r.status_code == 201, r.text
    assert r.json()["note"] == "linked via CR-2026-0403"


def test_the_rule_is_in_the_schema(app):
    note = app.openapi()["components"]["schemas"]["CaseIn"]["properties"]["note"]
    text = str(note)
    assert "e-mail" in text and "date of birth" in text and "aged 9" in text
