"""Property-based requests generated from the OpenAPI document: no input makes the API fail.

Schemathesis draws path, query, header and body values from each operation's schema and sends
them through the ASGI app with an admin key. Whatever the answer, it is never a 5xx, every error
is problem+json, and the answer keeps the contract: its status is one the operation documents,
and its media type and body are the ones documented for that status. A few derandomized examples
per operation keep the run short and stable.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CONTRACT = [status_code_conformance, content_type_conformance, response_schema_conformance]


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.fixture(scope="module")
def fuzz_headers(client, admin):
    lab = {"code": "fuzz", "name": "Fuzz", "timezone": "UTC"}
    assert client.post("/labs", json=lab, headers=admin).status_code == 201
    return admin


def test_no_input_makes_the_api_fail(app, fuzz_headers):
    failures = []
    checked = 0
    for operation in operations(app):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=3,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def probe(case):
            response = case.call(headers=fuzz_headers)
            content_type = response.headers.get("content-type") or [""]
            if isinstance(content_type, list):  # schemathesis keeps every header value
                content_type = content_type[0]
            problem = content_type == "application/problem+json"
            if response.status_code >= 500 or (response.status_code >= 400 and not problem):
                failures.append(
                    (case.method, case.formatted_path, response.status_code, response.text[:200])
                )
                return
            try:
                case.validate_response(response, checks=CONTRACT)
            except FailureGroup as broken:
                failures.append((case.method, case.formatted_path, response.status_code, broken))

        probe()
        checked += 1
    assert checked >= 50
    assert failures == []
