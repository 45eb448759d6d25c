"""ETags on mutable single resources; If-Match guards their changes (412 when stale)."""

from __future__ import annotations

import pytest
from api_support import case_payload, make_lab

LAB = "tags"
CASE = {"priority": "P3", "received_at": "2026-11-02T09:00:00+00:00"}


@pytest.fixture(scope="module")
def world(client, admin):
    make_lab(client, admin, LAB)
    assert client.put(f"/labs/{LAB}/examiners/E1", json={}, headers=admin).status_code == 201
    assert client.put(f"/labs/{LAB}/workstations/W1", json={}, headers=admin).status_code == 201
    imported = client.post(
        f"/labs/{LAB}/cases:import", json={"cases": [case_payload("C-1")]}, headers=admin
    )
    assert imported.status_code == 200
    job = client.get(f"/labs/{LAB}/jobs?case=C-1", headers=admin).json()["items"][0]
    return {"job": job["id"]}


def resources(world):
    """(url to read, method, url to change, body that changes something)."""
    job = world["job"]
    return [
        (f"/labs/{LAB}", "PATCH", f"/labs/{LAB}", {"slot_minutes": 30}),
        (
            f"/labs/{LAB}/examiners/E1",
            "PATCH",
            f"/labs/{LAB}/examiners/E1",
            {"skills": ["review"]},
        ),
        (
            f"/labs/{LAB}/examiners/E1",
            "PUT",
            f"/labs/{LAB}/examiners/E1",
            {"display_name": "Examiner one"},
        ),
        (
            f"/labs/{LAB}/workstations/W1",
            "PATCH",
            f"/labs/{LAB}/workstations/W1",
            {"capacity": 2},
        ),
        (f"/labs/{LAB}/cases/C-1", "PATCH", f"/labs/{LAB}/cases/C-1", {"note": "court 3"}),
        (f"/labs/{LAB}/cases/C-1", "PUT", f"/labs/{LAB}/cases/C-1", {**CASE, "priority": "P4"}),
        (
            f"/labs/{LAB}/jobs/{job}",
            "PUT",
            f"/labs/{LAB}/cases/C-1/devices/D1/jobs/acquire",
            {"stage": "acquire", "attended_minutes": 90},
        ),
        (f"/labs/{LAB}/jobs/{job}", "POST", f"/labs/{LAB}/jobs/{job}:hold", None),
    ]


def test_stale_if_match_is_412_and_changes_nothing(client, admin, world):
    for read_url, method, write_url, body in resources(world):
        first = client.get(read_url, headers=admin)
        assert first.status_code == 200
        old_tag = first.headers["ETag"]
        kwargs = {"json": body} if body is not None else {}

        changed = client.request(
            method, write_url, headers={**admin, "If-Match": old_tag}, **kwargs
        )
        assert changed.status_code in (200, 201), (write_url, changed.text)
        new_tag = changed.headers["ETag"]
        assert new_tag != old_tag
        assert client.get(read_url, headers=admin).headers["ETag"] == new_tag

        stale = client.request(method, write_url, headers={**admin, "If-Match": old_tag}, **kwargs)
        assert stale.status_code == 412, (write_url, stale.text)
        assert stale.headers["content-type"] == "application/problem+json"
        assert stale.json()["etag"] == new_tag
        assert client.get(read_url, headers=admin).headers["ETag"] == new_tag


def test_weak_or_foreign_tags_never_match(client, admin, world):
    tag = client.get(f"/labs/{LAB}/cases/C-1", headers=admin).headers["ETag"]
    for if_match in (f"W/{tag}", '"0000"', f'W/"0000", W/{tag}'):
        response = client.patch(
            f"/labs/{LAB}/cases/C-1", json={"note": "x"}, headers={**admin, "If-Match": if_match}
        )
        assert response.status_code == 412


@pytest.mark.parametrize("value", ["garbage", '"unclosed', "**", '"a",', "W/x", ""])
def test_a_malformed_tag_list_is_a_condition_like_any_other(client, admin, world, value):
    """RFC 9110 13.1.1-2: a value that is neither "*" nor names the current tag is "otherwise":
    If-Match fails (412, nothing changes), If-None-Match holds (the write or read goes on)."""
    url = f"/labs/{LAB}/cases/C-1"
    before = client.get(url, headers=admin).json()
    stale = client.put(url, json=CASE, headers={**admin, "If-Match": value})
    assert stale.status_code == 412, stale.text
    assert client.get(url, headers=admin).json() == before
    assert client.get(url, headers={**admin, "If-None-Match": value}).status_code == 200
    body = {**CASE, "note": f"taken {value!r}"}
    assert client.put(url, json=body, headers={**admin, "If-None-Match": value}).status_code == 200


def test_the_condition_headers_are_strings_in_the_schema(app):
    """Never null: a client generated from the schema would send the text "null"."""
    for parameter in app.openapi()["paths"]["/labs/{lab}/cases/{ref}"]["put"]["parameters"]:
        if parameter["name"] in ("If-Match", "If-None-Match"):
            assert parameter["schema"]["type"] == "string" and "anyOf" not in parameter["schema"]


def test_a_condition_on_a_missing_resource(client, admin, world):
    """RFC 9110 13.2.1: a 404 the method would answer anyway comes before the precondition;
    a PUT that would create is evaluated, and If-Match then fails (412)."""
    tagged = {**admin, "If-Match": '"0000"'}
    for method, url, body in (
        ("PATCH", f"/labs/{LAB}/cases/NOPE", {"note": "x"}),
        ("DELETE", f"/labs/{LAB}/cases/NOPE", None),
        ("PATCH", f"/labs/{LAB}/examiners/NOPE", {"active": False}),
        ("POST", f"/labs/{LAB}/jobs/{2**31 - 1}:hold", None),
        ("POST", f"/labs/{LAB}/cases/NOPE/devices/D1/jobs/acquire:hold", None),
    ):
        kwargs = {"json": body} if body is not None else {}
        assert client.request(method, url, headers=tagged, **kwargs).status_code == 404, url
    for url in (f"/labs/{LAB}/cases/NOPE", f"/labs/{LAB}/examiners/NOPE"):
        body = CASE if "cases" in url else {}
        assert client.put(url, json=body, headers=tagged).status_code == 412, url
        assert client.get(url, headers=admin).status_code == 404


def test_if_match_star_and_lists(client, admin, world):
    tag = client.get(f"/labs/{LAB}/cases/C-1", headers=admin).headers["ETag"]
    listed = client.patch(
        f"/labs/{LAB}/cases/C-1",
        json={"note": "listed"},
        headers={**admin, "If-Match": f'"0000", {tag}'},
    )
    assert listed.status_code == 200
    star = client.patch(
        f"/labs/{LAB}/cases/C-1", json={"note": "star"}, headers={**admin, "If-Match": "*"}
    )
    assert star.status_code == 200
    missing = client.put(f"/labs/{LAB}/cases/C-404", json=CASE, headers={**admin, "If-Match": "*"})
    assert missing.status_code == 412
    assert client.get(f"/labs/{LAB}/cases/C-404", headers=admin).status_code == 404


def test_if_none_match_star_creates_only(client, admin, world):
    create_only = {**admin, "If-None-Match": "*"}
    assert client.put(f"/labs/{LAB}/cases/NEW-1", json=CASE, headers=create_only).status_code == 201
    again = client.put(f"/labs/{LAB}/cases/NEW-1", json=CASE, headers=create_only)
    assert again.status_code == 412


def test_if_none_match_on_read_is_304(client, admin, world):
    for url in (f"/labs/{LAB}", f"/labs/{LAB}/cases/C-1", f"/labs/{LAB}/jobs/{world['job']}"):
        tag = client.get(url, headers=admin).headers["ETag"]
        cached = client.get(url, headers={**admin, "If-None-Match": tag})
        assert cached.status_code == 304
        assert cached.headers["ETag"] == tag
        assert client.get(url, headers={**admin, "If-None-Match": '"old"'}).status_code == 200


def test_delete_case_with_stale_tag_is_412(client, admin, world):
    assert client.put(f"/labs/{LAB}/cases/DEL-1", json=CASE, headers=admin).status_code == 201
    tag = client.get(f"/labs/{LAB}/cases/DEL-1", headers=admin).headers["ETag"]
    client.patch(f"/labs/{LAB}/cases/DEL-1", json={"note": "moved"}, headers=admin)
    stale = client.delete(f"/labs/{LAB}/cases/DEL-1", headers={**admin, "If-Match": tag})
    assert stale.status_code == 412
    fresh = client.get(f"/labs/{LAB}/cases/DEL-1", headers=admin).headers["ETag"]
    gone = client.delete(f"/labs/{LAB}/cases/DEL-1", headers={**admin, "If-Match": fresh})
    assert gone.status_code == 204
    assert client.get(f"/labs/{LAB}/cases/DEL-1", headers=admin).status_code == 404


def test_escalation_honours_if_match(client, admin, world):
    assert client.put(f"/labs/{LAB}/cases/ESC-1", json=CASE, headers=admin).status_code == 201
    tag = client.get(f"/labs/{LAB}/cases/ESC-1", headers=admin).headers["ETag"]
    client.patch(f"/labs/{LAB}/cases/ESC-1", json={"note": "n"}, headers=admin)
    stale = client.post(
        f"/labs/{LAB}/cases/ESC-1:escalate",
        json={"priority": "P1"},
        headers={**admin, "If-Match": tag},
    )
    assert stale.status_code == 412
    assert client.get(f"/labs/{LAB}/cases/ESC-1", headers=admin).json()["priority"] == "P3"
