"""API keys: shown once, stored hashed, revocable, scoped; last use recorded cheaply."""

from __future__ import annotations

import hashlib

import pytest
from api_support import make_lab
from sqlalchemy import select
from typer.testing import CliRunner

from models import ApiKey, AuditEvent
from scheduler.db import get_engine, session_scope
from scheduler.services import keys
from scheduler.settings import get_settings

LAB = "keys"


@pytest.fixture(scope="module")
def lab(client, admin):
    make_lab(client, admin, LAB)
    assert client.put(f"/labs/{LAB}/examiners/E1", json={}, headers=admin).status_code == 201
    return LAB


def stored(app, prefix):
    with session_scope(app.state.engine) as session:
        key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        session.expunge(key)
        return key


def test_only_a_hash_of_the_secret_is_stored(app, keymaker):
    token = keymaker.token("auditor")
    _, prefix, secret = token.split("_", 2)
    key = stored(app, prefix)
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in key.secret_hash and len(secret) >= 40


def test_verify_refuses_wrong_or_revoked_keys(app, keymaker):
    token = keymaker.token("supervisor")
    prefix = token.split("_")[1]
    with session_scope(app.state.engine) as session:
        assert keys.verify_token(session, token).prefix == prefix
        assert keys.verify_token(session, token + "x") is None
        assert keys.verify_token(session, token.replace("labq_", "nope_")) is None
        keys.revoke_key(session, actor="t", prefix=prefix)
        assert keys.verify_token(session, token) is None


def test_examiner_keys_are_bound_and_scoped(app, lab):
    from scheduler.errors import Invalid
    from scheduler.services.labs import get_lab
    from scheduler.services.resources import get_examiner

    with session_scope(app.state.engine) as session:
        lab_row = get_lab(session, lab)
        with pytest.raises(Invalid):
            keys.create_key(session, actor="t", role="examiner", name="x", lab=lab_row)
        examiner = get_examiner(session, lab_row, "E1")
        with pytest.raises(Invalid):
            keys.create_key(session, actor="t", role="auditor", name="x", examiner=examiner)
        new = keys.create_key(session, actor="t", role="examiner", name="x", examiner=examiner)
        assert (new.key.lab_id, new.key.examiner_id) == (lab_row.id, examiner.id)


def test_revoked_key_stops_working_at_once(client, admin, keymaker):
    token = keymaker.token("auditor")
    headers = {"X-API-Key": token}
    assert client.get("/labs", headers=headers).status_code == 200
    prefix = token.split("_")[1]
    revoked = client.post(f"/api-keys/{prefix}:revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/labs", headers=headers).status_code == 401
    assert client.post(f"/api-keys/{prefix}:revoke", headers=admin).status_code == 409
    assert client.post("/api-keys/ffffffff:revoke", headers=admin).status_code == 404


def test_a_request_sends_one_key_or_two_that_agree(client, keymaker):
    """A blank or wrong X-API-Key beside a valid bearer token is refused, not passed over."""
    token = keymaker.token("auditor")
    bearer = f"Bearer {token}"
    for headers in ({"X-API-Key": token}, {"Authorization": bearer}):
        assert client.get("/labs", headers=headers).status_code == 200
    both = {"X-API-Key": token, "Authorization": bearer}
    assert client.get("/labs", headers=both).status_code == 200
    for other in ("", "labq_00000000_x", keymaker.token("auditor")):
        r = client.get("/labs", headers={"X-API-Key": other, "Authorization": bearer})
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"
    blank = client.get("/labs", headers={"X-API-Key": ""})
    assert blank.status_code == 401 and "required" in blank.json()["detail"]
    # a proxy's Basic credentials carry no key and do not hide the one in X-API-Key
    basic = {"X-API-Key": token, "Authorization": "Basic dXNlcjpwdw=="}
    assert client.get("/labs", headers=basic).status_code == 200


def test_key_routes_show_the_token_once(client, admin, lab):
    made = client.post(
        "/api-keys",
        json={"role": "examiner", "name": "E1 phone", "lab": lab, "examiner": "E1"},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["token"].startswith(f"labq_{body['prefix']}_")
    assert (body["lab"], body["examiner"], body["role"]) == (lab, "E1", "examiner")
    listed = client.get("/api-keys?limit=500", headers=admin).json()["items"]
    mine = [k for k in listed if k["prefix"] == body["prefix"]]
    assert mine and "token" not in mine[0]
    assert body["token"] not in str(listed)
    bad = client.post("/api-keys", json={"role": "root", "name": "x"}, headers=admin)
    assert bad.status_code == 422
    orphan = client.post("/api-keys", json={"role": "examiner", "name": "x"}, headers=admin)
    assert orphan.status_code == 422


def test_last_used_is_recorded_after_use(app, client, keymaker):
    token = keymaker.token("auditor")
    prefix = token.split("_")[1]
    assert stored(app, prefix).last_used_at is None
    assert client.get("/labs", headers={"X-API-Key": token}).status_code == 200
    first = stored(app, prefix).last_used_at
    assert first is not None
    # Within the throttle window a second use does not write again.
    assert client.get("/labs", headers={"X-API-Key": token}).status_code == 200
    assert stored(app, prefix).last_used_at == first


def test_touch_is_throttled_in_the_database_too(app, keymaker):
    from datetime import timedelta

    token = keymaker.token("auditor")
    with session_scope(app.state.engine) as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == token.split("_")[1]))
    assert keys.touch(app.state.engine, key_id)
    assert not keys.touch(app.state.engine, key_id)
    later = keys.utcnow() + keys.TOUCH_EVERY + timedelta(seconds=1)
    assert keys.touch(app.state.engine, key_id, now=later)


@pytest.fixture
def cli_env(api_url, monkeypatch):
    monkeypatch.setenv("LABQ_DATABASE_URL", api_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_cli_creates_a_working_key_and_revokes_it(client, cli_env, lab):
    from api.cli import app as cli

    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--role", "supervisor", "--lab", lab])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("labq_")
    headers = {"X-API-Key": token}
    assert client.get(f"/labs/{lab}/cases", headers=headers).status_code == 200
    prefix = token.split("_")[1]
    listed = runner.invoke(cli, ["keys", "list"])  # piped: plain columns, nothing cut
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["prefix", "role", "lab", "name", "created", "last", "used", "revoked"]
    assert any(row.split()[:3] == [prefix, "supervisor", lab] for row in rows), listed.stdout
    revoked = runner.invoke(cli, ["keys", "revoke", prefix])
    assert revoked.exit_code == 0, revoked.output
    said = " ".join(revoked.output.split())
    assert "a running server may accept it for up to 5 s more (LABQ_KEY_CACHE_SECONDS)" in said
    assert client.get(f"/labs/{lab}/cases", headers=headers).status_code == 401
    again = runner.invoke(cli, ["keys", "revoke", prefix])
    assert again.exit_code == 1 and "already revoked" in again.output
    with session_scope(get_engine()) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.entity_id == prefix)
        ).all()
    assert sorted(actions) == ["api_key.create", "api_key.revoke"]


def test_cli_refuses_bad_arguments(cli_env, lab):
    from api.cli import app as cli

    runner = CliRunner()
    no_lab = runner.invoke(cli, ["keys", "create", "--role", "examiner", "--examiner", "E1"])
    assert no_lab.exit_code == 2
    unknown = runner.invoke(cli, ["keys", "create", "--role", "auditor", "--lab", "atlantis"])
    assert unknown.exit_code == 1 and "atlantis" in unknown.output
    bad_role = runner.invoke(cli, ["keys", "create", "--role", "root"])
    assert bad_role.exit_code == 2
