"""Repeated failed authentication from one client is slowed with 429; the key's owner is not."""

from __future__ import annotations

import warnings

import pytest

from api.app import create_app
from api.throttle import FailureThrottle, TooManyFailures
from scheduler.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BURST = 5


@pytest.fixture()
def throttled(api_url):
    app = create_app(
        Settings(
            database_url=api_url,
            environment="test",
            embedded_worker=False,
            auth_failure_burst=BURST,
            auth_failures_per_minute=1,
        )
    )
    yield app
    app.state.engine.dispose()


def test_a_burst_of_bad_keys_ends_in_429_with_retry_after(throttled):
    with TestClient(throttled, client=("203.0.113.7", 50000)) as guesser:
        statuses = [
            guesser.get("/labs", headers={"X-API-Key": f"labq_dead{i:04d}_x"}).status_code
            for i in range(BURST)
        ]
        assert statuses == [401] * BURST
        refused = guesser.get("/labs", headers={"X-API-Key": "labq_deadbeef_x"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["status"] == 429
        # Requests with no key at all count too, and are refused the same way.
        assert guesser.get("/labs").status_code == 429


def test_the_keys_owner_on_another_client_is_not_locked_out(throttled, keymaker):
    token = keymaker.token("admin")
    with TestClient(throttled, client=("203.0.113.7", 50000)) as guesser:
        for _ in range(BURST + 3):
            guesser.get("/labs", headers={"X-API-Key": f"labq_{token.split('_')[1]}_wrong"})
        assert guesser.get("/labs", headers={"X-API-Key": token}).status_code == 429
    with TestClient(throttled, client=("198.51.100.2", 50000)) as owner:
        assert owner.get("/labs", headers={"X-API-Key": token}).status_code == 200


def test_a_key_verified_before_still_passes_from_a_throttled_client(throttled, keymaker):
    token = keymaker.token("admin")
    with TestClient(throttled, client=("203.0.113.9", 50000)) as shared:
        assert shared.get("/labs", headers={"X-API-Key": token}).status_code == 200
        for _ in range(BURST):
            shared.get("/labs", headers={"X-API-Key": "labq_deadbeef_x"})
        assert shared.get("/labs", headers={"X-API-Key": "labq_deadbeef_x"}).status_code == 429
        assert shared.get("/labs", headers={"X-API-Key": token}).status_code == 200


def test_the_allowance_refills_with_time():
    now = [0.0]
    throttle = FailureThrottle(burst=2, per_minute=6, clock=lambda: now[0])
    throttle.failed("c")
    throttle.failed("c")
    with pytest.raises(TooManyFailures) as refused:
        throttle.check("c")
    assert refused.value.headers == {"Retry-After": "10"}
    now[0] = 10.0  # one failure refilled (6 a minute)
    throttle.check("c")
    throttle.failed("c")
    with pytest.raises(TooManyFailures):
        throttle.check("c")
    throttle.check("another client")


def test_a_zero_burst_turns_throttling_off():
    throttle = FailureThrottle(burst=0, per_minute=1)
    for _ in range(100):
        throttle.failed("c")
    throttle.check("c")

