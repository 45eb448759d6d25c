"""Every error is RFC 9457 problem+json with the right status; bad input never stores anything."""

from __future__ import annotations

import json
import re

import pytest
from api_support import case_payload, make_lab

from api.app import create_app
from api.deps import role_table
from api.schemas.common import WALL_CLOCK_PATTERN
from scheduler.settings import Settings

PROBLEM = "application/problem+json"
CASE = {"priority": "P3", "received_at": "2026-11-02T09:00:00+00:00"}


@pytest.fixture(scope="module")
def lab(client, admin):
    return make_lab(client, admin, "north")["code"]


def assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert "Traceback" not in response.text
    return body


# --- authentication ------------------------------------------------------------------------------


def test_missing_key_is_401_with_a_challenge(client):
    body = assert_problem(client.get("/labs"), 401)
    assert "X-API-Key" in body["detail"]


@pytest.mark.parametrize(
    "token",
    ["garbage", "labq__x", "labq_deadbeef_notthesecret", "Bearer", "labq_" + "a" * 300],
)
def test_bad_keys_are_401(client, token):
    response = client.get("/labs", headers={"X-API-Key": token})
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_secret_with_a_real_prefix_is_401(client, keymaker):
    token = keymaker.token("admin")
    prefix = token.split("_")[1]
    assert_problem(client.get("/labs", headers={"X-API-Key": f"labq_{prefix}_wrong"}), 401)


def test_bearer_authorization_is_accepted(client, keymaker):
    token = keymaker.token("auditor")
    assert client.get("/labs", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- routing -------------------------------------------------------------------------------------


def test_unknown_route_is_404(client, admin):
    body = assert_problem(client.get("/no/such/route", headers=admin), 404)
    assert body["instance"] == "/no/such/route"


def test_wrong_method_is_405_naming_the_allowed_ones(client, admin):
    response = client.delete("/labs", headers=admin)
    body = assert_problem(response, 405)
    assert response.headers["Allow"] == "GET, POST"
    assert "GET, POST" in body["detail"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_a_wrong_method_on_an_action_path_is_405(client, admin, lab, method):
    for path in (
        f"/labs/{lab}/jobs/3:pin",
        f"/labs/{lab}/cases/C/devices/D/jobs/J:pin",  # a job addressed by reference
        f"/labs/{lab}/schedules/1:publish",
    ):
        response = client.request(method, path, headers=admin)
        assert_problem(response, 405)
        assert response.headers["Allow"] == "POST"


def test_unknown_lab_is_404(client, admin):
    body = assert_problem(client.get("/labs/atlantis/cases", headers=admin), 404)
    assert "atlantis" in body["detail"]


# --- 422: bad payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"slot_minutes": True}, "slot_minutes"),  # a boolean is not an integer
        ({"slot_minutes": "15"}, "slot_minutes"),  # nor is a string
        ({"slot_minutes": 1.5}, "slot_minutes"),
        ({"slot_minutes": 0}, "slot_minutes"),  # below the bound
        ({"slot_minutes": 241}, "slot_minutes"),  # above it
        ({"weight_change": 10**12}, "weight_change"),  # solver-safe bound
        ({"code": "has space"}, "code"),
        ({"code": "x" * 65}, "code"),
        ({"default_scheme": "yes"}, "default_scheme"),
        ({"colour": "blue"}, "colour"),  # unknown fields are errors, not dropped
    ],
)
def test_bad_lab_fields_are_422_naming_the_field(client, admin, payload, field):
    lab = {"code": "ok", "name": "Ok", "timezone": "UTC", **payload}
    body = assert_problem(client.post("/labs", json=lab, headers=admin), 422)
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["errors"][0]["location"] == "body"
    assert field in body["detail"]


def test_nothing_is_stored_after_a_422(client, admin):
    assert_problem(
        client.post(
            "/labs",
            json={"code": "never", "name": "N", "timezone": "UTC", "slot_minutes": True},
            headers=admin,
        ),
        422,
    )
    assert_problem(client.get("/labs/never", headers=admin), 404)


def test_an_unknown_timezone_is_422_from_the_service(client, admin):
    lab = {"code": "tz", "name": "Tz", "timezone": "Mars/Olympus"}
    body = assert_problem(client.post("/labs", json=lab, headers=admin), 422)
    assert body["field"] == "timezone"  # kept for clients written before errors[]
    [error] = body["errors"]
    assert (error["location"], error["field"], error["type"]) == ("body", "timezone", "invalid")
    assert "Mars/Olympus" in error["message"]
    assert_problem(client.get("/labs/tz", headers=admin), 404)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**CASE, "received_at": "2026-11-02T09:00:00"}, "received_at"),  # naive instant
        ({**CASE, "status": "archived"}, "status"),
        ({**CASE, "note": "x" * 201}, "note"),
        ({**CASE, "priority": True}, "priority"),
        ({"received_at": CASE["received_at"]}, "priority"),  # missing
    ],
)
def test_bad_case_fields_are_422(client, admin, lab, payload, field):
    body = assert_problem(client.put(f"/labs/{lab}/cases/C-1", json=payload, headers=admin), 422)
    assert field in [e["field"] for e in body["errors"]]
    assert_problem(client.get(f"/labs/{lab}/cases/C-1", headers=admin), 404)


@pytest.mark.parametrize(
    "content",
    [b'{"code": ', b'{"code": "caf\xe9", "name": "x", "timezone": "UTC"}'],
    ids=["json", "utf8"],
)
def test_a_body_that_does_not_parse_is_400_whatever_the_reason(client, admin, content):
    response = client.post(
        "/labs", content=content, headers={**admin, "content-type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert body["type"].endswith("/malformed-body")
    assert [(e["location"], e["type"]) for e in body["errors"]] == [("body", "json_invalid")]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415_and_nothing_is_stored(client, admin, content_type):
    lab = b'{"code": "plain", "name": "Plain", "timezone": "UTC"}'
    response = client.post("/labs", content=lab, headers={**admin, "content-type": content_type})
    body = assert_problem(response, 415)
    assert content_type in body["detail"]
    assert_problem(client.get("/labs/plain", headers=admin), 404)


def test_a_json_suffix_media_type_is_read_as_json(client, admin):
    lab = b'{"code": "suffix", "name": "Suffix", "timezone": "UTC"}'
    headers = {**admin, "content-type": "application/vnd.labq+json; charset=utf-8"}
    assert client.post("/labs", content=lab, headers=headers).status_code == 201


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=true", "limit=ten"])
def test_page_limit_is_bounded(client, admin, query):
    body = assert_problem(client.get(f"/labs?{query}", headers=admin), 422)
    assert body["errors"][0]["location"] == "query"
    assert body["errors"][0]["field"] == "limit"


def test_a_forged_cursor_is_422(client, admin):
    body = assert_problem(client.get("/labs?cursor=%%%", headers=admin), 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("query", "cursor")]


def test_a_domain_422_without_a_field_still_lists_errors(client, admin, lab):
    case = client.put(f"/labs/{lab}/cases/SELF", json=CASE, headers=admin)
    assert case.status_code == 201, case.text
    response = client.post(f"/labs/{lab}/cases/SELF/links", json={"case": "SELF"}, headers=admin)
    body = assert_problem(response, 422)
    [error] = body["errors"]
    assert error["location"] == "body"
    assert error["message"] == body["detail"]


def test_a_bad_path_reference_is_422(client, admin, lab):
    assert_problem(client.get(f"/labs/{lab}/jobs/not-a-number", headers=admin), 422)
    assert_problem(client.get(f"/labs/{lab}/jobs/0", headers=admin), 422)


# --- 404 / 409 -----------------------------------------------------------------------------------


def test_duplicate_lab_is_409(client, admin, lab):
    body = assert_problem(
        client.post("/labs", json={"code": lab, "name": "x", "timezone": "UTC"}, headers=admin),
        409,
    )
    assert "lab.code" in body["detail"] or "uq_lab_code" in body["detail"]


def test_unknown_priority_level_is_404(client, admin, lab):
    case = {**CASE, "priority": "P9"}
    body = assert_problem(client.put(f"/labs/{lab}/cases/C-2", json=case, headers=admin), 404)
    assert "P9" in body["detail"]


def test_impossible_job_transition_is_409(client, admin, lab):
    imported = client.post(
        f"/labs/{lab}/cases:import", json={"cases": [case_payload("C-3")]}, headers=admin
    )
    assert imported.status_code == 200
    jobs = client.get(f"/labs/{lab}/jobs?case=C-3", headers=admin).json()["items"]
    job_id = jobs[0]["id"]
    assert client.post(f"/labs/{lab}/jobs/{job_id}:done", headers=admin).status_code == 200
    body = assert_problem(client.post(f"/labs/{lab}/jobs/{job_id}:start", headers=admin), 409)
    assert "done" in body["detail"]


def test_duplicate_link_is_409(client, admin, lab):
    for ref in ("L-1", "L-2"):
        assert client.put(f"/labs/{lab}/cases/{ref}", json=CASE, headers=admin).status_code == 201
    link = {"case": "L-2", "reason": "same report"}
    assert client.post(f"/labs/{lab}/cases/L-1/links", json=link, headers=admin).status_code == 201
    assert_problem(client.post(f"/labs/{lab}/cases/L-1/links", json=link, headers=admin), 409)
    back = {"case": "L-1"}
    assert_problem(client.post(f"/labs/{lab}/cases/L-2/links", json=back, headers=admin), 409)


# --- 413 -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_client(api_url):
    from fastapi.testclient import TestClient

    settings = Settings(database_url=api_url, max_request_bytes=2048, embedded_worker=False)
    app = create_app(settings)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def test_a_body_over_the_limit_is_413_and_nothing_is_stored(small_client, admin, lab):
    cases = {"cases": [case_payload(f"BIG-{i}") for i in range(10)]}
    response = small_client.post(f"/labs/{lab}/cases:import", json=cases, headers=admin)
    body = assert_problem(response, 413)
    assert body["limit"] == 2048
    assert_problem(small_client.get(f"/labs/{lab}/cases/BIG-0", headers=admin), 404)


def test_a_chunked_body_over_the_limit_is_413(small_client, admin, lab):
    def chunks():
        for _ in range(10):
            yield b" " * 500

    response = small_client.post(
        f"/labs/{lab}/cases:import",
        content=chunks(),
        headers={**admin, "content-type": "application/json"},
    )
    assert_problem(response, 413)


def test_a_chunked_body_under_the_limit_is_read(small_client, admin, lab):
    def chunks():
        yield b'{"priority": "P3", '
        yield b'"received_at": "2026-11-02T09:00:00+00:00"}'

    response = small_client.put(
        f"/labs/{lab}/cases/CHUNKED",
        content=chunks(),
        headers={**admin, "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text


# --- the OpenAPI document ------------------------------------------------------------------------


def test_openapi_declares_problem_json_for_every_error(app):
    document = app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = {s: r for s, r in responses.items() if s[0] in "45"}
            assert errors, f"{method} {path} declares no errors"
            if path != "/health":
                assert {"401", "403"} <= set(errors), f"{method} {path}"
            for status, response in errors.items():
                assert list(response["content"]) == [PROBLEM], f"{method} {path} {status}"
            if "422" in errors:
                schema = errors["422"]["content"][PROBLEM]["schema"]["$ref"]
                assert schema.endswith("/ValidationProblem")


def test_openapi_bounds_reach_the_schema(app):
    schemas = app.openapi()["components"]["schemas"]
    slot = schemas["LabCreate"]["properties"]["slot_minutes"]
    assert (slot["minimum"], slot["maximum"]) == (1, 240)
    job = schemas["JobIn"]["properties"]["severity"]
    assert (job["minimum"], job["maximum"]) == (0, 3)
    assert "ApiKey" in app.openapi()["components"]["securitySchemes"]


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_operation_ids_are_unique_and_readable(app):
    ids = [op["operationId"] for _, _, op in operations(app.openapi())]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", operation_id), operation_id
    assert {"listJobs", "importCases", "putCase", "startJob", "createLab"} <= set(ids)


def test_every_operation_names_its_roles_from_its_declaration(app):
    table = role_table(app)
    for method, path, operation in operations(app.openapi()):
        declared = table[(method.upper(), path)]
        assert set(operation["x-roles"]) == (declared or set()), f"{method} {path}"
        assert "**Roles:**" in operation["description"]
    by_id = {op["operationId"]: op for _, _, op in operations(app.openapi())}
    assert by_id["createLab"]["x-roles"] == ["admin"]
    assert "examiner" in by_id["examinerSchedule"]["x-roles"]
    assert by_id["health"]["x-roles"] == []


def test_every_status_an_operation_can_answer_is_documented(app):
    for method, path, operation in operations(app.openapi()):
        responses = set(operation["responses"])
        where = f"{method} {path}"
        assert "503" in responses, where
        if operation["x-roles"]:
            assert {"401", "403", "429"} <= responses, where
        parameters = operation.get("parameters", [])
        if parameters or "requestBody" in operation:
            assert "422" in responses, where
        if any(p["in"] == "path" for p in parameters):
            assert "404" in responses, where
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= responses, where
            assert list(operation["requestBody"]["content"]) == ["application/json"], where
        if method != "get" and any(p["name"] == "If-Match" for p in parameters):
            assert "412" in responses, where
        for status in ("400", "422"):
            if status in responses:
                schema = operation["responses"][status]["content"][PROBLEM]["schema"]
                assert schema["$ref"].endswith("/ValidationProblem"), where


def test_a_create_by_put_documents_201_with_the_resource(app, client, admin, lab):
    document = app.openapi()
    put = document["paths"]["/labs/{lab}/cases/{ref}"]["put"]
    assert put["responses"]["201"]["content"] == put["responses"]["200"]["content"]
    assert client.put(f"/labs/{lab}/cases/NEW-1", json=CASE, headers=admin).status_code == 201


def test_no_schema_uses_format_time_and_wall_clock_times_have_a_pattern(app):
    text = json.dumps(app.openapi())
    assert '"format": "time"' not in text
    shift = app.openapi()["components"]["schemas"]["ShiftOut"]["properties"]["starts"]
    assert shift["pattern"] == WALL_CLOCK_PATTERN


def test_the_validation_problem_schema_lists_errors(app):
    schemas = app.openapi()["components"]["schemas"]
    assert "errors" in schemas["ValidationProblem"]["required"]
    field_error = schemas["FieldError"]
    assert set(field_error["required"]) == {"location", "field", "message", "type"}
