"""The role matrix: every route of the OpenAPI document, every role, no key, another lab's key.

Expected: 401 without a key; 403 for a role the route does not allow, and for a key scoped to
another lab; anything but 401/403 for an allowed role (the request may still be a 404 or a 422 —
authorization comes first). The allowed roles come from the routes' own ``allow(...)``
declarations, read back with ``role_table``; every route but /health must declare some.
"""

from __future__ import annotations

import re

import pytest
from api_support import make_lab

from api.app import create_app
from api.deps import role_table
from models.security import ROLES
from scheduler.settings import Settings

# Feed links carry their credential in the path (a feed token; tests/api/test_feeds.py).
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/feeds/{token}/schedule.ics"),
    ("GET", "/feeds/{token}/board"),
}
DOCS = {("GET", "/docs"), ("GET", "/redoc")}  # public pages, not operations of the API
LAB, OTHER_LAB, EXAMINER = "alpha", "beta", "E1"
MISSING_INT = "999999"


def _operations() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://"))
    return sorted(
        (method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops
    )


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def app(api_url):
    # The matrix sends two unauthenticated requests per operation from one client: with the
    # failed-authentication throttle on, the later ones would be 429 (test_auth_throttle.py).
    settings = Settings(
        database_url=api_url, environment="test", embedded_worker=False, auth_failure_burst=0
    )
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


def concrete(app, method: str, path: str) -> str:
    """Fill the path's parameters: the test lab, the examiner key's own examiner, else misses."""
    operation = app.openapi()["paths"][path][method.lower()]
    types = {
        p["name"]: p.get("schema", {}).get("type")
        for p in operation.get("parameters", [])
        if p["in"] == "path"
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "lab":
            return LAB
        if name == "examiner":
            return EXAMINER
        if types.get(name) == "integer":
            return MISSING_INT
        return "nope"

    return re.sub(r"{(\w+)}", fill, path)


@pytest.fixture(scope="module")
def world(client, admin, keymaker):
    """Two labs, an examiner in each, and keys of every role for the first lab and the second."""
    make_lab(client, admin, LAB)
    make_lab(client, admin, OTHER_LAB)
    for lab, examiner in ((LAB, EXAMINER), (OTHER_LAB, "E9")):
        response = client.put(f"/labs/{lab}/examiners/{examiner}", json={}, headers=admin)
        assert response.status_code == 201, response.text
    own = {
        role: keymaker.headers(
            role,
            lab=None if role == "admin" else LAB,
            examiner=EXAMINER if role == "examiner" else None,
        )
        for role in ROLES
    }
    foreign = {
        role: keymaker.headers(role, lab=OTHER_LAB, examiner="E9" if role == "examiner" else None)
        for role in ROLES
    }
    return own, foreign


def test_every_route_declares_its_roles(app):
    table = role_table(app)
    assert set(table) == set(OPERATIONS) | DOCS
    public = PUBLIC | DOCS
    undeclared = sorted(op for op, roles in table.items() if roles is None and op not in public)
    assert undeclared == []
    assert all(table[op] is None for op in public)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_role_matrix(app, client, world, method, path):
    own, foreign = world
    allowed = role_table(app)[(method, path)]
    url = concrete(app, method, path)
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}

    anonymous = client.request(method, url, **body)
    if (method, path) in PUBLIC:
        assert anonymous.status_code not in (401, 403)
        return
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert (
        client.request(method, url, headers={"X-API-Key": "labq_0000_x"}, **body).status_code == 401
    )

    assert allowed is not None
    for role, headers in own.items():
        status = client.request(method, url, headers=headers, **body).status_code
        if role in allowed:
            assert status not in (401, 403), f"{role} refused on {method} {url}"
        else:
            assert status == 403, f"{role} got {status} on {method} {url}"

    if "{lab}" in path:
        for role, headers in foreign.items():
            response = client.request(method, url, headers=headers, **body)
            assert response.status_code == 403, f"{role} of {OTHER_LAB} got {response.status_code}"


def test_scoped_keys_list_only_their_lab(client, world, admin):
    own, _ = world
    supervisor = client.get("/labs", headers=own["supervisor"]).json()
    assert [lab["code"] for lab in supervisor["items"]] == [LAB]
    everything = client.get("/labs", headers=admin).json()
    assert {LAB, OTHER_LAB} <= {lab["code"] for lab in everything["items"]}


def test_examiner_key_sees_no_case_or_resource_detail(client, world, admin):
    own, _ = world
    examiner = own["examiner"]
    case = {"priority": "P3", "received_at": "2026-11-02T09:00:00+00:00"}
    assert client.put(f"/labs/{LAB}/cases/C-9", json=case, headers=admin).status_code == 201
    for url in (
        "/labs",
        f"/labs/{LAB}",
        f"/labs/{LAB}/cases",
        f"/labs/{LAB}/cases/C-9",
        f"/labs/{LAB}/jobs",
        f"/labs/{LAB}/examiners",
        f"/labs/{LAB}/examiners/{EXAMINER}",
        f"/labs/{LAB}/audit-events",
        "/audit-events",
    ):
        response = client.get(url, headers=examiner)
        assert response.status_code == 403, url
        assert "P3" not in response.text and "received_at" not in response.text


def test_a_lab_scoped_admin_cannot_create_labs_or_all_lab_keys(client, world, keymaker):
    scoped_admin = keymaker.headers("admin", lab=LAB)
    lab = {"code": "gamma", "name": "Gamma", "timezone": "UTC"}
    assert client.post("/labs", json=lab, headers=scoped_admin).status_code == 403
    key = {"role": "auditor", "name": "x", "lab": OTHER_LAB}
    assert client.post("/api-keys", json=key, headers=scoped_admin).status_code == 403
    own_lab_key = client.post(
        "/api-keys", json={"role": "auditor", "name": "x"}, headers=scoped_admin
    )
    assert own_lab_key.status_code == 201
    assert own_lab_key.json()["lab"] == LAB


def test_unknown_lab_is_404_for_all_lab_keys_and_403_for_scoped_ones(client, world, admin):
    own, _ = world
    assert client.get("/labs/nowhere/cases", headers=admin).status_code == 404
    assert client.get("/labs/nowhere/cases", headers=own["supervisor"]).status_code == 403
