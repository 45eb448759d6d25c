"""Caches on the schedule read path keep every guarantee of an uncached read.

- a verified key is trusted for ``key_cache_seconds`` per process: revoked elsewhere, it stops
  working once that window has passed (an injected clock, no sleeping); revoked in this process,
  at once;
- a publish, by this process or another, is served as ``current`` on the next read;
- cached summaries, assignments and examiner views equal those of an app without caches, byte
  for byte, and live references (a case escalated after publishing) show at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import case_payload
from pydantic import TypeAdapter
from sqlalchemy import select, update

from api.app import create_app
from api.pagination import Page
from api.routers import schedules
from models import ApiKey
from models.base import utcnow
from scheduler.db import make_engine, session_scope
from scheduler.planning import views
from scheduler.planning.publish import publish
from scheduler.services import keys
from scheduler.services.labs import get_lab
from scheduler.settings import Settings
from scheduler.worker import run_once

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LAB = "cachelab"
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def lab(client, app, admin) -> str:
    """A lab with two examiners, four cases and one published schedule."""
    r = client.post(
        "/labs",
        json={"code": LAB, "name": "Cache lab", "timezone": "Europe/Berlin"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    for ref in ("E1", "E2"):
        r = client.put(
            f"/labs/{LAB}/examiners/{ref}",
            json={"skills": ["mobile", "review"], "shifts": SHIFTS},
            headers=admin,
        )
        assert r.status_code == 201, r.text
    r = client.put(f"/labs/{LAB}/workstations/U1", json={"capabilities": ["ufed"]}, headers=admin)
    assert r.status_code == 201, r.text
    cases = [case_payload(f"C{n}", priority="P4") for n in range(1, 5)]
    r = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=admin)
    assert r.status_code == 200, r.text
    _solve(client, app, admin, publish=True)
    return LAB


def _solve(client, app, headers, *, publish: bool) -> int:
    r = client.post(
        f"/labs/{LAB}/solve-runs",
        json={"time_limit_seconds": 1, "auto_publish": publish},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    for _ in range(5):  # an escalation may have queued a repair run before this one
        assert run_once(app.state.engine, "w-cache", policy="fifo")
        run = client.get(r.headers["Location"], headers=headers).json()
        if run["status"] not in ("queued", "running"):
            break
    assert run["status"] == "succeeded", run
    return int(run["schedule_version"])


@pytest.fixture(scope="module")
def uncached(api_url) -> Iterator[TestClient]:
    """A second app on the same database with both caches off: the reference answers."""
    settings = Settings(
        database_url=api_url,
        environment="test",
        embedded_worker=False,
        key_cache_seconds=0,
        schedule_cache_entries=0,
    )
    application = create_app(settings)
    with TestClient(application) as test_client:
        yield test_client
    application.state.engine.dispose()


def _reads(lab: str, version: str = "current") -> list[str]:
    base = f"/labs/{lab}/schedules/{version}"
    return [
        base,
        f"{base}/assignments",
        f"{base}/assignments?ends_after=2020-01-01T00:00:00Z&starts_before=2100-01-01T00:00:00Z",
        f"{base}/examiners/E1",
        f"{base}/examiners/E2",
    ]


def _same(cached: Any, reference: Any) -> None:
    assert cached.status_code == reference.status_code == 200, cached.text
    assert cached.content == reference.content
    assert cached.headers.get("ETag") == reference.headers.get("ETag")
    assert cached.headers["content-type"] == reference.headers["content-type"]


def test_cached_reads_equal_uncached_ones(client, uncached, keymaker, lab):
    sup = keymaker.headers("supervisor", lab)
    for path in _reads(lab):
        first = client.get(path, headers=sup)  # fills the caches
        again = client.get(path, headers=sup)  # served from them
        reference = uncached.get(path, headers=sup)
        _same(first, reference)
        _same(again, reference)
    rows = client.get(f"/labs/{lab}/schedules/current/assignments", headers=sup).json()["items"]
    assert rows and {"job", "priority", "starts_at", "severity"} <= set(rows[0])


def test_rendered_json_is_what_the_response_models_give(client, keymaker, lab):
    """The JSON rendered without FastAPI is its response model's serialization, byte for byte."""
    sup = keymaker.headers("supervisor", lab)
    models = (
        TypeAdapter(schedules.VersionOut),
        TypeAdapter(Page[schedules.AssignmentOut]),
        TypeAdapter(Page[schedules.AssignmentOut]),
        TypeAdapter(schedules.ExaminerScheduleOut),
        TypeAdapter(schedules.ExaminerScheduleOut),
    )
    for path, model in zip(_reads(lab), models, strict=True):
        body = client.get(path, headers=sup).content
        assert model.dump_json(model.validate_json(body)) == body, path


def test_an_examiner_key_still_sees_only_its_own_view(client, keymaker, lab):
    mine = keymaker.headers("examiner", lab, "E1")
    for _ in range(2):  # the second time with the key and the version cached
        own = client.get(f"/labs/{lab}/schedules/current/examiners/E1", headers=mine)
        assert own.status_code == 200
        assert all(a["examiner"] == "E1" for a in own.json()["assignments"])
        other = client.get(f"/labs/{lab}/schedules/current/examiners/E2", headers=mine)
        assert other.status_code == 403
        assert other.headers["content-type"] == "application/problem+json"
        for path in (f"/labs/{lab}/schedules/current", f"/labs/{lab}/schedules/1/assignments"):
            assert client.get(path, headers=mine).status_code == 403


def test_an_escalation_after_publishing_shows_at_once(client, uncached, keymaker, lab):
    sup = keymaker.headers("supervisor", lab)
    path = f"/labs/{lab}/schedules/current/assignments?limit=500"
    before = client.get(path, headers=sup).json()["items"]
    case = before[0]["case"]
    assert {r["priority"] for r in before if r["case"] == case} == {"P4"}
    r = client.post(f"/labs/{lab}/cases/{case}:escalate", json={"priority": "P2"}, headers=sup)
    assert r.status_code == 200, r.text
    after = client.get(path, headers=sup)
    assert {r["priority"] for r in after.json()["items"] if r["case"] == case} == {"P2"}
    _same(after, uncached.get(path, headers=sup))


def test_a_new_publish_is_current_on_the_next_read(client, app, uncached, keymaker, lab):
    sup = keymaker.headers("supervisor", lab)
    old = client.get(f"/labs/{lab}/schedules/current", headers=sup)
    old_id, old_tag = old.json()["id"], old.headers["ETag"]
    client.get(f"/labs/{lab}/schedules/current/examiners/E1", headers=sup)
    new_id = _solve(client, app, sup, publish=False)
    r = client.post(f"/labs/{lab}/schedules/{new_id}:publish", headers=sup)
    assert r.status_code == 200, r.text
    current = client.get(f"/labs/{lab}/schedules/current", headers=sup)
    assert current.json()["id"] == new_id and current.json()["is_current"] is True
    assert current.headers["ETag"] != old_tag
    stale = client.get(f"/labs/{lab}/schedules/current", headers={**sup, "If-None-Match": old_tag})
    assert stale.status_code == 200 and stale.json()["id"] == new_id
    fresh = client.get(
        f"/labs/{lab}/schedules/current", headers={**sup, "If-None-Match": current.headers["ETag"]}
    )
    assert fresh.status_code == 304 and fresh.headers["ETag"] == current.headers["ETag"]
    assert client.get(f"/labs/{lab}/schedules/{old_id}", headers=sup).json()["is_current"] is False
    view = client.get(f"/labs/{lab}/schedules/current/examiners/E1", headers=sup).json()
    assert view["version"] == new_id
    for path in (*_reads(lab), *_reads(lab, str(old_id))):
        _same(client.get(path, headers=sup), uncached.get(path, headers=sup))


def test_a_publish_by_another_process_is_seen_at_once(client, app, api_url, keymaker, lab):
    sup = keymaker.headers("supervisor", lab)
    before = client.get(f"/labs/{lab}/schedules/current", headers=sup).json()["id"]
    version_id = _solve(client, app, sup, publish=False)
    other = make_engine(api_url)  # its own engine and pool, as another process has
    try:
        with session_scope(other) as session:
            version = views.get_version(session, get_lab(session, lab), version_id)
            publish(session, version, actor="elsewhere")
    finally:
        other.dispose()
    current = client.get(f"/labs/{lab}/schedules/current", headers=sup).json()
    assert current["id"] == version_id != before


def test_a_key_revoked_elsewhere_stops_working_after_the_window(app, client, keymaker, lab):
    clock = Clock()
    app.state.key_cache = keys.KeyCache(5, clock=clock)
    try:
        token = keymaker.token("auditor", lab)
        headers = {"X-API-Key": token}
        path = f"/labs/{lab}/schedules/current"
        assert client.get(path, headers=headers).status_code == 200
        # Another process revokes it: the row changes, this process's cache is not told.
        with session_scope(app.state.engine) as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.prefix == token.split("_")[1])
                .values(revoked_at=utcnow())
            )
        clock.now += 4.9
        assert client.get(path, headers=headers).status_code == 200  # within the window
        clock.now += 0.2
        r = client.get(path, headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        clock.now += 60
        assert client.get(path, headers=headers).status_code == 401
    finally:
        del app.state.key_cache


def test_a_key_revoked_here_stops_working_at_once(app, client, admin, keymaker, lab):
    clock = Clock()
    app.state.key_cache = keys.KeyCache(5, clock=clock)
    try:
        token = keymaker.token("supervisor", lab)
        headers = {"X-API-Key": token}
        path = f"/labs/{lab}/schedules/current/assignments"
        assert client.get(path, headers=headers).status_code == 200
        prefix = token.split("_")[1]
        assert client.post(f"/api-keys/{prefix}:revoke", headers=admin).status_code == 200
        assert client.get(path, headers=headers).status_code == 401
        clock.now += 1  # the revoked key is never cached again, even if read before the commit
        assert client.get(path, headers=headers).status_code == 401
    finally:
        del app.state.key_cache


def test_wrong_tokens_are_never_cached(app, client, keymaker, lab):
    app.state.key_cache = cache = keys.KeyCache(5, clock=Clock())
    try:
        token = keymaker.token("supervisor", lab)
        path = f"/labs/{lab}/schedules/current"
        assert client.get(path, headers={"X-API-Key": token}).status_code == 200
        for wrong in (token + "x", token[:-1], token.replace("labq_", "nope_")):
            assert client.get(path, headers={"X-API-Key": wrong}).status_code == 401
        assert len(cache._entries) == 1
    finally:
        del app.state.key_cache


def test_the_key_cache_is_bounded_and_can_be_off():
    clock = Clock()
    cache = keys.KeyCache(5, clock=clock, max_entries=2)
    made = [keys.VerifiedKey(n, f"p{n}", "auditor", None, None, None) for n in range(3)]
    for n, key in enumerate(made):
        cache.put(f"token{n}", key)
    assert cache.get("token0") is None and cache.get("token2") == made[2]
    off = keys.KeyCache(0, clock=clock)
    off.put("token0", made[0])
    assert off.get("token0") is None


def test_the_read_cache_is_bounded():
    cache = views.ReadCache(2)
    for n in range(3):
        cache.put(n, str(n))
    assert len(cache) == 2 and cache.get(0) is None and cache.get(2) == "2"
    assert views.ReadCache(0).get(1) is None


def test_verify_gives_the_key_and_its_lab(app, keymaker, lab):
    token = keymaker.token("supervisor", lab)
    with session_scope(app.state.engine) as session:
        key = keys.verify(session, token)
        assert key is not None and key.lab_code == lab and key.role == "supervisor"
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == key.prefix))
        assert row is not None and row.id == key.id
        assert keys.verify(session, token + "x") is None
        assert keys.verify(session, "labq_ffffffff_nope") is None
