"""The contract clients generate from: one form of instant, wall-clock times, offline docs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from api_support import make_lab

from api.schemas.common import utc_instants

LAB = "contract"
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


@pytest.fixture(scope="module")
def lab(client, admin):
    make_lab(client, admin, LAB, timezone="Europe/Berlin")
    return LAB


def instants(value: Any, at: str = "") -> list[tuple[str, str]]:
    """Every (path, string) in a JSON document that reads as a date and time."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in instants(v, f"{at}.{k}")]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in instants(v, f"{at}[{i}]")]
    if isinstance(value, str) and INSTANT.match(value):
        return [(at, value)]
    return []


def test_every_instant_is_utc_with_z_whatever_offset_it_came_in(client, admin, lab):
    case = {"priority": "P3", "received_at": "2026-11-02T09:00:00+02:00"}
    put = client.put(f"/labs/{lab}/cases/Z-1", json=case, headers=admin)
    assert put.status_code == 201, put.text
    assert put.json()["received_at"] == "2026-11-02T07:00:00Z"
    examiner = client.put(f"/labs/{lab}/examiners/E1", json={}, headers=admin)
    assert examiner.status_code == 201, examiner.text
    absence = {
        "kind": "leave",
        "starts_at": "2026-12-01T14:00:00-05:00",
        "ends_at": "2026-12-01T15:30:00-05:00",
    }
    made = client.post(f"/labs/{lab}/examiners/E1/absences", json=absence, headers=admin)
    assert made.status_code == 201, made.text
    assert (made.json()["starts_at"], made.json()["ends_at"]) == (
        "2026-12-01T19:00:00Z",
        "2026-12-01T20:30:00Z",
    )
    seen = []
    for url in (
        f"/labs/{lab}",
        f"/labs/{lab}/cases/Z-1",
        f"/labs/{lab}/cases",
        f"/labs/{lab}/examiners/E1",
        f"/labs/{lab}/examiners/E1/absences",
        f"/labs/{lab}/audit-events",
        f"/labs/{lab}/snapshot",
        "/api-keys",
    ):
        response = client.get(url, headers=admin)
        assert response.status_code == 200, f"{url}: {response.text}"
        seen += [(url + at, value) for at, value in instants(response.json())]
    assert len(seen) >= 10
    assert [(at, value) for at, value in seen if not value.endswith("Z")] == []


def test_stored_documents_have_their_instants_rewritten_and_nothing_else():
    stored = {
        "epoch": "2026-12-02T17:00:00+01:00",
        "days": [{"day": "2026-12-02", "at": "2026-12-02T08:00:00.250000-05:00"}],
        "wall_clock": "2026-12-02T08:00:00",  # no offset: not an instant, left alone
        "count": 3,
    }
    assert utc_instants(stored) == {
        "epoch": "2026-12-02T16:00:00Z",
        "days": [{"day": "2026-12-02", "at": "2026-12-02T13:00:00.250000Z"}],
        "wall_clock": "2026-12-02T08:00:00",
        "count": 3,
    }


def test_lab_local_times_are_wall_clock_without_offset(client, admin, lab):
    shifts = [{"weekday": 0, "starts": "08:00", "ends": "16:30:00"}]
    response = client.put(f"/labs/{lab}/examiners/E1/shifts", json=shifts, headers=admin)
    assert response.status_code == 200, response.text
    assert [(s["starts"], s["ends"]) for s in response.json()] == [("08:00:00", "16:30:00")]
    for bad in ("08:00+01:00", "08:00Z", "8:00", "24:00", "08:00:00.5", 28800):
        shifts = [{"weekday": 0, "starts": bad, "ends": "16:30"}]
        refused = client.put(f"/labs/{lab}/examiners/E1/shifts", json=shifts, headers=admin)
        assert refused.status_code == 422, f"{bad!r}: {refused.text}"
        assert refused.json()["errors"][0]["field"] == "[0].starts"


# --- documentation that works without internet ---------------------------------------------------

ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_labq_itself(client, page):
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = [a or b for a, b in ASSET.findall(response.text)]
    assert "/openapi.json" in references
    external = [r for r in references if re.match(r"^(https?:)?//", r)]
    assert external == []
    assert "cdn." not in response.text and "fonts.googleapis" not in response.text
    assets = [r for r in references if r.startswith("/docs/assets/")]
    assert len(assets) >= 2
    for asset in assets:
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1000, asset
