"""The console's sign-in, session cookie, CSRF and role/lab scoping, through the ASGI app."""

from __future__ import annotations

from datetime import timedelta

import pytest
from console_support import browser, build_lab, csrf_of, external_urls, page_csrf, sign_in
from sqlalchemy import select, update

from models import AuditEvent, ConsoleSession
from models.base import utcnow
from scheduler.db import session_scope
from scheduler.services import keys

LAB = "consolelab"
OTHER = "consoleother"


@pytest.fixture(scope="module")
def lab(client, admin, keymaker, app):
    build_lab(client, admin, keymaker, app, LAB)
    assert (
        client.post(
            "/labs", json={"code": OTHER, "name": "Other", "timezone": "UTC"}, headers=admin
        ).status_code
        == 201
    )
    return LAB


def test_root_redirects_to_the_console_and_the_console_to_sign_in(client, app):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    anonymous = browser(app)
    r = anonymous.get("/ui/")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/ui/sign-in")
    r = anonymous.get(f"/ui/labs/{LAB}/board")
    assert r.status_code == 303 and "next=/ui/labs/" in r.headers["location"]


def test_sign_in_sets_a_strict_http_only_cookie_and_stores_only_a_hash(app, keymaker, lab):
    token = keymaker.token("supervisor", LAB)
    client = browser(app)
    form = client.get("/ui/sign-in")
    r = client.post("/ui/sign-in", data={"csrf": csrf_of(form.text), "key": token, "next": ""})
    assert r.status_code == 303
    assert r.headers["location"] == f"/ui/labs/{LAB}/board"
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and "labq_console=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    secret = client.cookies["labq_console"]
    with session_scope(app.state.engine) as s:
        stored = s.scalars(select(ConsoleSession.secret_hash)).all()
        assert secret not in stored and keys.hash_secret(secret) in stored
        assert (
            s.scalar(select(AuditEvent).where(AuditEvent.action == "console.sign_in").limit(1))
            is not None
        )
    assert client.get(f"/ui/labs/{LAB}/board").status_code == 200


def test_https_requests_get_a_secure_cookie(app, keymaker, lab):
    client = browser(app)
    client.base_url = "https://testserver"  # type: ignore[misc]
    form = client.get("https://testserver/ui/sign-in")
    r = client.post(
        "https://testserver/ui/sign-in",
        data={"csrf": csrf_of(form.text), "key": keymaker.token("supervisor", LAB)},
    )
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and "labq_console=" in v
    )
    assert "Secure" in cookie


def test_a_wrong_key_or_a_missing_form_token_signs_nobody_in(app, lab):
    client = browser(app)
    form = client.get("/ui/sign-in")
    r = client.post("/ui/sign-in", data={"csrf": csrf_of(form.text), "key": "labq_0000_nope"})
    assert r.status_code == 401 and "unknown, malformed or revoked" in r.text
    assert "labq_console" not in client.cookies
    r = client.post("/ui/sign-in", data={"key": "labq_0000_nope"})
    assert r.status_code == 403


def test_writes_without_the_csrf_token_are_refused(app, keymaker, lab):
    client = sign_in(app, keymaker.token("supervisor", LAB))
    csrf = page_csrf(client, f"/ui/labs/{LAB}/board")
    for data in ({}, {"csrf": "forged"}, {"csrf": csrf[:-1]}):
        r = client.post("/ui/sign-out", data=data)
        assert r.status_code == 403, data
        assert "CSRF" in r.text
    assert client.get(f"/ui/labs/{LAB}/board").status_code == 200  # still signed in
    r = client.post("/ui/sign-out", data={"csrf": csrf})
    assert r.status_code == 303
    assert client.get(f"/ui/labs/{LAB}/board").status_code == 303  # signed out
    # the old cookie is dead, even replayed
    replay = browser(app)
    replay.cookies.set("labq_console", "whatever", path="/ui")
    assert replay.get(f"/ui/labs/{LAB}/board").status_code == 303


def test_an_idle_session_expires_and_a_revoked_key_ends_its_session(
    app, keymaker, lab, admin, client
):
    token = keymaker.token("supervisor", LAB)
    browser_a = sign_in(app, token)
    assert browser_a.get(f"/ui/labs/{LAB}/board").status_code == 200
    idle = app.state.settings.console_idle_minutes
    secret = browser_a.cookies["labq_console"]
    with session_scope(app.state.engine) as s:
        s.execute(
            update(ConsoleSession)
            .where(ConsoleSession.secret_hash == keys.hash_secret(secret))
            .values(last_seen_at=utcnow() - timedelta(minutes=idle + 1))
        )
    assert browser_a.get(f"/ui/labs/{LAB}/board").status_code == 303

    browser_b = sign_in(app, token)
    assert browser_b.get(f"/ui/labs/{LAB}/board").status_code == 200
    prefix = token.split("_")[1]
    assert client.post(f"/api-keys/{prefix}:revoke", headers=admin).status_code == 200
    assert browser_b.get(f"/ui/labs/{LAB}/board").status_code == 303


def test_the_session_honours_the_keys_role_and_lab_scope(app, keymaker, lab):
    other_lab = sign_in(app, keymaker.token("supervisor", OTHER))
    r = other_lab.get(f"/ui/labs/{LAB}/board")
    assert r.status_code == 403 and "scoped to lab" in r.text
    integration = sign_in(app, keymaker.token("integration", LAB))
    r = integration.get(f"/ui/labs/{LAB}/board")
    assert r.status_code == 403
    auditor = sign_in(app, keymaker.token("auditor", LAB))
    assert auditor.get(f"/ui/labs/{LAB}/board").status_code == 200
    everywhere = sign_in(app, keymaker.token("admin"))
    r = everywhere.get("/ui/")
    assert r.headers["location"] == "/ui/labs"
    labs = everywhere.get("/ui/labs")
    assert LAB in labs.text and OTHER in labs.text
    assert everywhere.get("/ui/labs/nosuchlab/board").status_code == 404


def test_only_console_paths_are_followed_after_sign_in(app, keymaker, lab):
    client = browser(app)
    form = client.get("/ui/sign-in")
    r = client.post(
        "/ui/sign-in",
        data={
            "csrf": csrf_of(form.text),
            "key": keymaker.token("supervisor", LAB),
            "next": "https://evil.example/ui/",
        },
    )
    assert r.headers["location"] == f"/ui/labs/{LAB}/board"


def test_console_answers_carry_a_strict_security_policy(app, keymaker, lab):
    client = sign_in(app, keymaker.token("supervisor", LAB))
    r = client.get(f"/ui/labs/{LAB}/board")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    assert external_urls(r.text) == []
