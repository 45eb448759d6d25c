"""Helpers of the console's tests: sign in through the real form, read tokens off pages."""

from __future__ import annotations

import re
import warnings
from typing import Any

from fastapi import FastAPI

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Any reference a page could make to another host: an absolute or protocol-relative URL in an
# attribute, a CSS url() or @import, or a script's fetch of one.
EXTERNAL = re.compile(
    r"""(?:src|href|action|formaction|poster|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//"""
    r"""|url\(\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//|@import|https?://""",
    re.IGNORECASE,
)


def browser(app: FastAPI) -> TestClient:
    """A fresh client with its own cookie jar (a browser)."""
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def sign_in(app: FastAPI, token: str, next_: str = "/ui/") -> TestClient:
    client = browser(app)
    form = client.get("/ui/sign-in")
    assert form.status_code == 200, form.text
    answer = client.post(
        "/ui/sign-in", data={"csrf": csrf_of(form.text), "key": token, "next": next_}
    )
    assert answer.status_code == 303, answer.text
    assert "labq_console" in client.cookies
    return client


def page_csrf(client: TestClient, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


def external_urls(html: str, own: str = "testserver") -> list[Any]:
    """Every reference to another host in ``html`` (``own`` is the server's own host)."""
    found = []
    for match in EXTERNAL.finditer(html):
        after = html[match.end() : match.end() + 80]
        if after.startswith(own) or after.lstrip("/").startswith(own):
            continue
        found.append(match.group(0) + after[:40])
    return found


SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(7)]


def build_lab(
    client: TestClient, admin: dict[str, str], keymaker: Any, app: FastAPI, code: str
) -> None:
    """A lab with two examiners, a UFED, six cases and a published schedule."""
    from api_support import case_payload

    from scheduler.worker import run_once

    r = client.post(
        "/labs",
        json={"code": code, "name": f"Lab {code}", "timezone": "Europe/London"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    sup = keymaker.headers("supervisor", code)
    for ref in ("E1", "E2"):
        r = client.put(
            f"/labs/{code}/examiners/{ref}",
            json={"skills": ["mobile", "review"], "shifts": SHIFTS},
            headers=sup,
        )
        assert r.status_code == 201, r.text
    r = client.put(f"/labs/{code}/workstations/U1", json={"capabilities": ["ufed"]}, headers=sup)
    assert r.status_code == 201, r.text
    cases = [case_payload(f"C{n}", priority=("P1", "P2", "P3")[n % 3]) for n in range(1, 7)]
    r = client.post(f"/labs/{code}/cases:import", json={"cases": cases}, headers=sup)
    assert r.status_code == 200, r.text
    queued = client.post(f"/labs/{code}/solve-runs", json={"time_limit_seconds": 2}, headers=sup)
    assert queued.status_code == 202, queued.text
    assert run_once(app.state.engine, "w-console", policy="priority")
    run = client.get(queued.headers["Location"], headers=sup).json()
    assert run["status"] == "succeeded", run
    r = client.post(f"/labs/{code}/schedules/{run['schedule_version']}:publish", headers=sup)
    assert r.status_code == 200, r.text
