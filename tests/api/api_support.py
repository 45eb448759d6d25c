"""Helpers shared by the API tests: payload builders and small request wrappers."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

#: A lab's weekday shifts, 08:00-16:00, for the tests that run a lab on a manual clock.
WEEKDAYS = [{"weekday": d, "starts": "08:00", "ends": "16:00"} for d in range(5)]


def ok(response: Any, status: int = 200) -> Any:
    """The response's JSON body, once its status is the one expected (else the body, failing)."""
    assert response.status_code == status, response.text
    return response.json()


def make_lab(client: TestClient, admin: dict[str, str], code: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/labs",
        json={"code": code, "name": code.title(), "timezone": "UTC", **extra},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def case_payload(ref: str, priority: str = "P4", devices: int = 1) -> dict[str, Any]:
    """A case with ``devices`` phones, each acquire -> process -> review."""
    return {
        "external_ref": ref,
        "priority": priority,
        "received_at": "2026-11-02T09:00:00+00:00",
        "devices": [
            {
                "external_ref": f"D{d}",
                "kind": "phone",
                "arrived_at": "2026-11-02T12:00:00+00:00",
                "jobs": [
                    {
                        "external_ref": "acquire",
                        "stage": "acquire",
                        "attended_minutes": 60,
                        "machine_minutes": 120,
                        "skills": ["mobile"],
                        "capabilities": ["ufed"],
                    },
                    {
                        "external_ref": "process",
                        "stage": "process",
                        "attended_minutes": 15,
                        "machine_minutes": 600,
                        "after": [f"D{d}/acquire"],
                    },
                    {
                        "external_ref": "review",
                        "stage": "review",
                        "attended_minutes": 120,
                        "exposure_minutes": 100,
                        "severity": 2,
                        "skills": ["review"],
                        "after": ["process"],
                    },
                ],
            }
            for d in range(1, devices + 1)
        ],
    }


def all_pages(
    client: TestClient, path: str, headers: dict[str, str], limit: int = 500, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a paginated list, following ``next_cursor`` to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = client.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
