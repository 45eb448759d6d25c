"""Concurrent writers on one resource: no lost update, whatever the interleaving.

Real threads released together by a barrier send real requests through the ASGI app to a real
database (SQLite and PostgreSQL). The assertions are the invariants a client relies on, never a
timing: of N writers holding the same ETag exactly one wins and the rest get 412, and what is
stored is the winner's; ``If-None-Match: *`` creates once; concurrent PATCHes of different fields
all land; a replaced collection is one writer's, never a merge; identical imports all answer 200.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import pytest
from api_support import case_payload, make_lab
from sqlalchemy import select

from api.app import create_app
from models import Lab
from scheduler.settings import Settings

LAB = "race"
CASE = {"priority": "P3", "received_at": "2026-11-02T09:00:00+00:00"}
WRITERS = 20


def race(n: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(0..n-1)`` on n threads that all start at once; the results in writer order."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def statuses(responses: list[Any]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def winner(responses: list[Any], status: int = 200) -> int:
    (index,) = [i for i, r in enumerate(responses) if r.status_code == status]
    return index


@pytest.fixture(scope="module")
def app(api_url):
    """The app, with writers that queue behind each other for as long as it takes (the lab lock
    on PostgreSQL, the write lock on SQLite): on a busy machine the last of 20 may wait many
    seconds, and how long is no part of what these tests check (the lab lock's own bound has its
    own test below)."""
    settings = Settings(
        database_url=api_url,
        environment="test",
        embedded_worker=False,
        lab_lock_wait_seconds=300,
        db_busy_timeout_seconds=300,
    )
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="module")
def world(client, admin):
    # The racing writers name terms of their own (s0, c0, w0-k0, ...): the lab defines them all.
    racers = range(WRITERS)
    vocabulary = {
        "skills": ["mobile", "review", *(f"{k}{i}" for k in "sp" for i in racers)]
        + [f"w{i}-k{j}" for i in racers for j in range(4)],
        "capabilities": ["ufed", *(f"c{i}" for i in racers)]
        + [f"w{i}-c{j}" for i in racers for j in range(4)],
    }
    make_lab(client, admin, LAB, vocabulary=vocabulary)
    for ref in ("E1", "E2"):
        assert client.put(f"/labs/{LAB}/examiners/{ref}", json={}, headers=admin).status_code == 201
    assert client.put(f"/labs/{LAB}/workstations/W1", json={}, headers=admin).status_code == 201
    imported = client.post(
        f"/labs/{LAB}/cases:import", json={"cases": [case_payload("C-1")]}, headers=admin
    )
    assert imported.status_code == 200, imported.text
    job = client.get(f"/labs/{LAB}/jobs?case=C-1", headers=admin).json()["items"][0]
    return {"job": job["id"]}


def _shifts(i: int) -> list[dict[str, Any]]:
    return [{"weekday": i % 5, "starts": f"{6 + i % 10:02d}:{i % 4 * 15:02d}", "ends": "18:00"}]


def _shown_shifts(examiner: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"weekday": s["weekday"], "starts": s["starts"][:5], "ends": s["ends"][:5]}
        for s in examiner["shifts"]
    ]


@dataclass(frozen=True)
class Guarded:
    """A write that honours If-Match: writer i sends ``body(i)``; a read then shows ``shown``."""

    name: str
    read: str
    method: str
    write: str
    body: Callable[[int], Any]
    shown: Callable[[dict[str, Any]], Any]
    written: Callable[[Any], Any]


GUARDED = [
    Guarded(
        "PATCH lab",
        f"/labs/{LAB}",
        "PATCH",
        f"/labs/{LAB}",
        lambda i: {"name": f"Race {i}"},
        itemgetter("name"),
        itemgetter("name"),
    ),
    Guarded(
        "PATCH case",
        f"/labs/{LAB}/cases/C-1",
        "PATCH",
        f"/labs/{LAB}/cases/C-1",
        lambda i: {"note": f"writer {i}"},
        itemgetter("note"),
        itemgetter("note"),
    ),
    Guarded(
        "PUT case",
        f"/labs/{LAB}/cases/C-1",
        "PUT",
        f"/labs/{LAB}/cases/C-1",
        lambda i: {**CASE, "priority": "P4", "note": f"put {i}"},
        itemgetter("note"),
        itemgetter("note"),
    ),
    Guarded(
        "PATCH examiner",
        f"/labs/{LAB}/examiners/E1",
        "PATCH",
        f"/labs/{LAB}/examiners/E1",
        lambda i: {"display_name": f"Examiner {i}"},
        itemgetter("display_name"),
        itemgetter("display_name"),
    ),
    Guarded(
        "PUT examiner",
        f"/labs/{LAB}/examiners/E1",
        "PUT",
        f"/labs/{LAB}/examiners/E1",
        lambda i: {"display_name": f"Put {i}", "skills": [f"s{i}"]},
        itemgetter("display_name", "skills"),
        itemgetter("display_name", "skills"),
    ),
    Guarded(
        "PUT shifts",
        f"/labs/{LAB}/examiners/E1",
        "PUT",
        f"/labs/{LAB}/examiners/E1/shifts",
        _shifts,
        _shown_shifts,
        lambda body: body,
    ),
    Guarded(
        "PATCH workstation",
        f"/labs/{LAB}/workstations/W1",
        "PATCH",
        f"/labs/{LAB}/workstations/W1",
        lambda i: {"name": f"Box {i}"},
        itemgetter("name"),
        itemgetter("name"),
    ),
    Guarded(
        "PUT workstation",
        f"/labs/{LAB}/workstations/W1",
        "PUT",
        f"/labs/{LAB}/workstations/W1",
        lambda i: {"name": f"Put box {i}", "capabilities": [f"c{i}"]},
        itemgetter("name", "capabilities"),
        itemgetter("name", "capabilities"),
    ),
]


@pytest.mark.parametrize("spec", GUARDED, ids=[g.name for g in GUARDED])
def test_if_match_writers_one_wins_the_rest_412(client, admin, world, spec):
    tag = client.get(spec.read, headers=admin).headers["ETag"]
    guarded = {**admin, "If-Match": tag}

    responses = race(
        WRITERS,
        lambda i: client.request(spec.method, spec.write, json=spec.body(i), headers=guarded),
    )

    assert statuses(responses) == {200: 1, 412: WRITERS - 1}, [r.text for r in responses]
    won = winner(responses)
    after = client.get(spec.read, headers=admin)
    assert spec.shown(after.json()) == spec.written(spec.body(won))
    if "ETag" in responses[won].headers:
        assert after.headers["ETag"] == responses[won].headers["ETag"]


def test_if_match_job_writers_one_wins(client, admin, world):
    url = f"/labs/{LAB}/jobs/{world['job']}"
    tag = client.get(url, headers=admin).headers["ETag"]
    guarded = {**admin, "If-Match": tag}

    responses = race(
        WRITERS,
        lambda i: client.put(
            f"/labs/{LAB}/cases/C-1/devices/D1/jobs/acquire",
            json={"stage": "acquire", "attended_minutes": 30 + i},
            headers=guarded,
        ),
    )

    assert statuses(responses) == {200: 1, 412: WRITERS - 1}
    won = winner(responses)
    after = client.get(url, headers=admin)
    assert after.json()["attended_minutes"] == 30 + won
    assert after.headers["ETag"] == responses[won].headers["ETag"]

    tag = after.headers["ETag"]
    held = race(WRITERS, lambda i: client.post(f"{url}:hold", headers={**admin, "If-Match": tag}))
    assert statuses(held) == {200: 1, 412: WRITERS - 1}
    assert client.get(url, headers=admin).headers["ETag"] == held[winner(held)].headers["ETag"]


CREATES = [
    ("case", "cases", lambda i: {**CASE, "note": f"first {i}"}, "note"),
    ("examiner", "examiners", lambda i: {"display_name": f"First {i}"}, "display_name"),
    ("workstation", "workstations", lambda i: {"name": f"First {i}"}, "name"),
]


@pytest.mark.parametrize("spec", CREATES, ids=[c[0] for c in CREATES])
def test_if_none_match_star_creates_exactly_once(client, admin, world, spec):
    kind, collection, body, field = spec
    url = f"/labs/{LAB}/{collection}/NEW-{kind}"
    create_only = {**admin, "If-None-Match": "*"}

    responses = race(WRITERS, lambda i: client.put(url, json=body(i), headers=create_only))

    assert statuses(responses) == {201: 1, 412: WRITERS - 1}, [r.text for r in responses]
    won = winner(responses, 201)
    assert client.get(url, headers=admin).json()[field] == body(won)[field]


def test_if_none_match_star_creates_a_job_exactly_once(client, admin, world):
    url = f"/labs/{LAB}/cases/C-1/devices/D1/jobs/extra"
    create_only = {**admin, "If-None-Match": "*"}

    responses = race(
        WRITERS,
        lambda i: client.put(
            url, json={"stage": "report", "attended_minutes": 10 + i}, headers=create_only
        ),
    )

    assert statuses(responses) == {201: 1, 412: WRITERS - 1}
    won = winner(responses, 201)
    job_id = responses[won].json()["id"]
    assert (
        client.get(f"/labs/{LAB}/jobs/{job_id}", headers=admin).json()["attended_minutes"]
        == 10 + won
    )


def test_unconditional_puts_of_a_new_examiner_create_one(client, admin, world):
    url = f"/labs/{LAB}/examiners/PLAIN"

    responses = race(WRITERS, lambda i: client.put(url, json={"skills": [f"p{i}"]}, headers=admin))

    assert statuses(responses) == {201: 1, 200: WRITERS - 1}, [r.text for r in responses]
    skills = client.get(url, headers=admin).json()["skills"]
    assert skills in [[f"p{i}"] for i in range(WRITERS)]


def test_patches_of_different_lab_fields_all_land(client, admin, world):
    changes = [
        {"planning_horizon_days": 21},
        {"frozen_working_days": 2},
        {"solve_time_limit_seconds": 45},
        {"weight_tardiness": 7},
        {"weight_change": 8},
        {"weight_balance": 9},
        {"weight_continuity": 11},
    ]

    responses = race(
        len(changes), lambda i: client.patch(f"/labs/{LAB}", json=changes[i], headers=admin)
    )

    assert statuses(responses) == {200: len(changes)}
    lab = client.get(f"/labs/{LAB}", headers=admin).json()
    for change in changes:
        ((field, value),) = change.items()
        assert lab[field] == value


def test_patches_of_different_case_fields_all_land(client, admin, world):
    assert client.put(f"/labs/{LAB}/cases/C-F", json=CASE, headers=admin).status_code == 201
    changes = [
        {"note": "court on Friday"},
        {"legal_deadline_at": "2026-12-24T17:00:00Z"},
        {"status": "on_hold"},
        {"received_at": "2026-11-01T08:00:00Z"},
    ]

    responses = race(
        len(changes),
        lambda i: client.patch(f"/labs/{LAB}/cases/C-F", json=changes[i], headers=admin),
    )

    assert statuses(responses) == {200: len(changes)}, [r.text for r in responses]
    case = client.get(f"/labs/{LAB}/cases/C-F", headers=admin).json()
    assert case["note"] == "court on Friday"
    assert case["legal_deadline_at"].startswith("2026-12-24T17:00:00")
    assert case["status"] == "on_hold"
    assert case["received_at"].startswith("2026-11-01T08:00:00")


def test_unconditional_puts_of_a_new_pool_and_level_create_one_each(client, admin, world):
    pools = race(
        WRITERS,
        lambda i: client.put(
            f"/labs/{LAB}/licence-pools/NEWPOOL", json={"capacity": 1 + i}, headers=admin
        ),
    )
    level = {"rank": 9, "weight": 1, "target_start_hours": 500}
    levels = race(
        WRITERS,
        lambda i: client.put(
            f"/labs/{LAB}/priority-levels/P9", json={**level, "name": f"Level {i}"}, headers=admin
        ),
    )

    assert statuses(pools) == {200: WRITERS}, [r.text for r in pools if r.status_code != 200]
    assert statuses(levels) == {200: WRITERS}, [r.text for r in levels if r.status_code != 200]
    listed = client.get(f"/labs/{LAB}/licence-pools", headers=admin).json()["items"]
    assert [p["name"] for p in listed].count("NEWPOOL") == 1
    stored = client.get(f"/labs/{LAB}/licence-pools/NEWPOOL", headers=admin).json()
    assert stored["capacity"] in range(1, WRITERS + 1)
    scheme = client.get(f"/labs/{LAB}/priority-levels", headers=admin).json()["items"]
    assert [lv["code"] for lv in scheme].count("P9") == 1


def _skill_set(i: int) -> list[str]:
    """Writer i's skills: sets of different sizes, so a merge of two can never pass for one."""
    return sorted(f"w{i}-k{j}" for j in range(1 + i % 4))


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_replacing_skill_writes_leave_exactly_one_writers_set(client, admin, world, method):
    url = f"/labs/{LAB}/examiners/E2"
    sets = [_skill_set(i) for i in range(14)]

    responses = race(
        14,
        lambda i: client.request(method, url, json={"skills": sets[i]}, headers=admin),
    )

    assert statuses(responses) == {200: 14}
    assert client.get(url, headers=admin).json()["skills"] in sets


def test_replacing_shift_writes_leave_exactly_one_writers_pattern(client, admin, world):
    url = f"/labs/{LAB}/examiners/E2"
    patterns = [
        [{"weekday": d, "starts": f"{7 + i % 3:02d}:00", "ends": "15:00"} for d in range(1 + i % 5)]
        for i in range(14)
    ]

    responses = race(14, lambda i: client.put(f"{url}/shifts", json=patterns[i], headers=admin))

    assert statuses(responses) == {200: 14}
    assert _shown_shifts(client.get(url, headers=admin).json()) in patterns


def test_replacing_capability_writes_leave_exactly_one_writers_set(client, admin, world):
    url = f"/labs/{LAB}/workstations/W1"
    sets = [sorted(f"w{i}-c{j}" for j in range(1 + i % 4)) for i in range(14)]

    responses = race(14, lambda i: client.patch(url, json={"capabilities": sets[i]}, headers=admin))

    assert statuses(responses) == {200: 14}
    assert client.get(url, headers=admin).json()["capabilities"] in sets


def test_identical_concurrent_imports_all_answer_200_and_store_one_copy(client, admin, world):
    refs = [f"IMP-{n:02d}" for n in range(50)]
    payload = {"cases": [case_payload(ref) for ref in refs]}

    responses = race(
        10, lambda i: client.post(f"/labs/{LAB}/cases:import", json=payload, headers=admin)
    )

    assert statuses(responses) == {200: 10}, [r.text for r in responses if r.status_code != 200]
    counts = [r.json() for r in responses]
    assert sum(c["created"] for c in counts) == len(refs)
    for c in counts:
        assert c["updated"] == 0
        assert c["created"] + c["unchanged"] == len(refs)
    stored: list[str] = []
    cursor = None
    while True:
        query = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/labs/{LAB}/cases", params=query, headers=admin).json()
        stored += [c["external_ref"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(r for r in stored if r.startswith("IMP-")) == refs
    jobs = client.get(f"/labs/{LAB}/jobs", params={"case": "IMP-07"}, headers=admin).json()
    assert len(jobs["items"]) == 3


def test_a_change_that_waits_too_long_for_the_lab_is_503_and_writes_nothing(
    client, admin, world, app, backend, monkeypatch
):
    if backend != "postgresql":
        pytest.skip("SQLite waits on its busy timeout (scheduler/db.py), not on the lab row")
    monkeypatch.setattr(app.state.settings, "lab_lock_wait_seconds", 0.2)
    before = client.get(f"/labs/{LAB}/cases/C-1", headers=admin).json()["note"]
    other = app.state.engine.connect()
    try:
        with other.begin():
            other.execute(select(Lab.id).where(Lab.code == LAB).with_for_update(key_share=True))
            waited = client.patch(
                f"/labs/{LAB}/cases/C-1", json={"note": "too late"}, headers=admin
            )
    finally:
        other.close()

    assert waited.status_code == 503, waited.text
    assert waited.headers["Retry-After"] == "1"
    assert waited.json()["type"] == "https://labq.dev/problems/busy"
    assert client.get(f"/labs/{LAB}/cases/C-1", headers=admin).json()["note"] == before
    retried = client.patch(f"/labs/{LAB}/cases/C-1", json={"note": "in time"}, headers=admin)
    assert retried.status_code == 200
    assert retried.json()["note"] == "in time"


def test_a_term_removed_while_writers_name_it_is_never_left_in_use(client, admin, world):
    """The removal and the writes take the lab's lock: either the term goes and every write
    naming it is refused, or a write stored it first and the removal is refused."""
    assert client.put(f"/labs/{LAB}/vocabulary/skills/racy", headers=admin).status_code == 201

    def call(i: int) -> Any:
        if i == 0:
            return client.delete(f"/labs/{LAB}/vocabulary/skills/racy", headers=admin)
        return client.put(
            f"/labs/{LAB}/examiners/RACY-{i}", json={"skills": ["racy"]}, headers=admin
        )

    removal, *writes = race(WRITERS, call)
    defined = "racy" in client.get(f"/labs/{LAB}/vocabulary", headers=admin).json()["skills"]
    if removal.status_code == 204:
        assert not defined
        assert statuses(writes) == {422: WRITERS - 1}
    else:  # a write came first; the term stayed, so every write was accepted
        assert removal.status_code == 409, removal.text
        assert removal.json()["in_use"][0]["examiners"]["count"] >= 1
        assert defined
        assert statuses(writes) == {201: WRITERS - 1}
    stored = [
        client.get(f"/labs/{LAB}/examiners/RACY-{i}", headers=admin) for i in range(1, WRITERS)
    ]
    assert {r.status_code for r in stored} == ({200} if defined else {404})


def test_an_import_waits_for_the_lab_as_long_as_any_change_and_no_longer(
    client, admin, world, app, backend, monkeypatch
):
    """The import takes the lab's lock only once its payload is worked out, with the same bound
    on the wait; a payload the lab already holds takes no lock and answers at once."""
    if backend != "postgresql":
        pytest.skip("SQLite waits on its busy timeout (scheduler/db.py), not on the lab row")
    monkeypatch.setattr(app.state.settings, "lab_lock_wait_seconds", 0.2)
    url = f"/labs/{LAB}/cases:import"
    assert client.post(url, json={"cases": [case_payload("C-SAME")]}, headers=admin).is_success
    other = app.state.engine.connect()
    try:
        with other.begin():
            other.execute(select(Lab.id).where(Lab.code == LAB).with_for_update(key_share=True))
            same = client.post(url, json={"cases": [case_payload("C-SAME")]}, headers=admin)
            waited = client.post(url, json={"cases": [case_payload("C-NEW")]}, headers=admin)
    finally:
        other.close()

    assert same.status_code == 200, same.text
    assert same.json()["unchanged"] == 1
    assert waited.status_code == 503, waited.text
    assert waited.headers["Retry-After"] == "1"
    assert client.get(f"/labs/{LAB}/cases/C-NEW", headers=admin).status_code == 404
    retried = client.post(url, json={"cases": [case_payload("C-NEW")]}, headers=admin)
    assert retried.status_code == 200 and retried.json()["created"] == 1
