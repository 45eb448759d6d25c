"""Concurrent writers against ``labq serve`` over real HTTP: are any updates lost?

    python -m scheduler.benchmarks.conditional_writes --backend both --clients 20 --rounds 3

Each backend gets a new database (a temporary SQLite file, or a uniquely named PostgreSQL
database dropped afterwards), migrated, with an admin key made by the keys service; then the real
server runs as a child process (``labq serve --workers N``, embedded worker off) and each round
releases N client threads at once (a barrier), each with its own HTTP connection:

- ``if-match case`` / ``if-match examiner``: all PATCH one case's note (one examiner's name)
  with the same ETag; expected one 200 and N-1 412, and the stored value the winner's;
- ``if-none-match``: all PUT one new examiner with ``If-None-Match: *``; expected one 201;
- ``imports``: 10 clients POST the same 50-case import; expected 10 x 200 and one copy each;
- ``skills``: 14 clients replace one examiner's skills with sets of different sizes; expected
  the stored set to be exactly one writer's;
- ``increments``: every client adds 1 to a counter kept in a case note five times (read with
  its ETag, write with If-Match, again on 412); expected the counter to equal the writes that
  were answered 200 (a 503 is retried after its Retry-After and counted).

Figures are printed (counts of each status, lost updates), never asserted. ``--checkout DIR``
serves another checkout's code (an earlier commit) to compare with.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from scheduler.benchmarks.api_reads import (
    DEFAULT_ADMIN_URL,
    create_database,
    drop_database,
    start_server,
)
from scheduler.db import make_engine, session_scope
from scheduler.migrate import upgrade
from scheduler.services import keys

LAB = "race"
CASE = {"priority": "P3", "received_at": "2026-11-02T09:00:00Z"}
Echo = Callable[[str], None]


@contextmanager
def database(backend: str, admin_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'race.db'}"
        return
    url, name = create_database(admin_url)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


def admin_key(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            token = keys.create_key(session, actor="bench", role="admin", name="race").token
    finally:
        engine.dispose()
    return {"X-API-Key": token}


class Clients:
    """N HTTP clients (one connection each) that start each burst together."""

    def __init__(self, base: str, headers: dict[str, str], n: int) -> None:
        self.n = n
        self.clients = [httpx.Client(base_url=base, headers=headers, timeout=120) for _ in range(n)]
        self.pool = ThreadPoolExecutor(n)

    def burst(self, n: int, call: Callable[[httpx.Client, int], Any]) -> list[Any]:
        barrier = threading.Barrier(n)

        def run(i: int) -> Any:
            barrier.wait()
            return call(self.clients[i], i)

        return list(self.pool.map(run, range(n)))

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.clients:
            client.close()


def _counts(responses: list[httpx.Response]) -> dict[int, int]:
    return dict(sorted(Counter(r.status_code for r in responses).items()))


def if_match(c: Clients, url: str, field: str, prefix: str) -> dict[str, Any]:
    def value(i: int) -> str:
        return f"{prefix} w{i}"

    one = c.clients[0]
    tag = one.get(url).headers["ETag"]
    responses = c.burst(
        c.n, lambda client, i: client.patch(url, json={field: value(i)}, headers={"If-Match": tag})
    )
    stored = one.get(url).json()[field]
    succeeded = [i for i, r in enumerate(responses) if r.status_code == 200]
    lost = sum(1 for i in succeeded if value(i) != stored)
    return {"statuses": _counts(responses), "lost_updates": lost}


def if_none_match(c: Clients, url: str) -> dict[str, Any]:
    responses = c.burst(
        c.n,
        lambda client, i: client.put(
            url, json={"display_name": f"First {i}"}, headers={"If-None-Match": "*"}
        ),
    )
    created = [i for i, r in enumerate(responses) if r.status_code == 201]
    stored = c.clients[0].get(url).json()["display_name"]
    overwritten = sum(1 for i in created if f"First {i}" != stored)
    return {"statuses": _counts(responses), "created_then_overwritten": overwritten}


def imports(c: Clients, prefix: str, writers: int = 10, cases: int = 50) -> dict[str, Any]:
    refs = [f"{prefix}-{n:02d}" for n in range(cases)]
    payload = {
        "cases": [
            {
                **CASE,
                "external_ref": ref,
                "devices": [
                    {
                        "external_ref": "D1",
                        "kind": "phone",
                        "arrived_at": "2026-11-02T12:00:00Z",
                        "jobs": [{"external_ref": "acquire", "stage": "acquire"}],
                    }
                ],
            }
            for ref in refs
        ]
    }
    url = f"/labs/{LAB}/cases:import"
    responses = c.burst(writers, lambda client, i: client.post(url, json=payload))
    totals: Counter[str] = Counter()
    for r in responses:
        if r.status_code == 200:
            body = r.json()
            totals.update({k: body[k] for k in ("created", "updated", "unchanged")})
    stored = 0
    for ref in refs:
        stored += c.clients[0].get(f"/labs/{LAB}/cases/{ref}").status_code == 200
    return {"statuses": _counts(responses), "answered": dict(totals), "stored_cases": stored}


SKILL_WRITERS = 14


def _skill_sets(writers: int = SKILL_WRITERS) -> list[list[str]]:
    return [sorted(f"w{i}-k{j}" for j in range(1 + i % 4)) for i in range(writers)]


def skills(c: Clients, url: str, writers: int = SKILL_WRITERS) -> dict[str, Any]:
    sets = _skill_sets(writers)
    responses = c.burst(writers, lambda client, i: client.put(url, json={"skills": sets[i]}))
    stored = c.clients[0].get(url).json()["skills"]
    return {"statuses": _counts(responses), "one_writers_set": stored in sets}


def increments(c: Clients, url: str, each: int = 5) -> dict[str, Any]:
    first = c.clients[0].put(url, json={**CASE, "note": "0"})
    assert first.status_code in (200, 201), first.text

    def add(client: httpx.Client, i: int) -> Counter[int]:
        answers: Counter[int] = Counter()
        while answers[200] < each:
            read = client.get(url)
            value = int(read.json()["note"])
            wrote = client.patch(
                url, json={"note": str(value + 1)}, headers={"If-Match": read.headers["ETag"]}
            )
            answers[wrote.status_code] += 1
            if wrote.status_code == 503:  # busy: nothing written, retry as told
                time.sleep(float(wrote.headers.get("Retry-After", "1")))
            elif wrote.status_code not in (200, 412):
                raise RuntimeError(f"{wrote.status_code}: {wrote.text[:300]}")
        return answers

    results = c.burst(c.n, add)
    written = sum(r[200] for r in results)
    final = int(c.clients[0].get(url).json()["note"])
    return {
        "writes_200": written,
        "refused_412": sum(r[412] for r in results),
        "busy_503": sum(r[503] for r in results),
        "final_counter": final,
        "lost_updates": written - final,
    }


def one_round(c: Clients, r: int) -> dict[str, dict[str, Any]]:
    case_url, examiner_url = f"/labs/{LAB}/cases/C-1", f"/labs/{LAB}/examiners/E1"
    return {
        "if-match case": if_match(c, case_url, "note", f"r{r}"),
        "if-match examiner": if_match(c, examiner_url, "display_name", f"r{r}"),
        "if-none-match": if_none_match(c, f"/labs/{LAB}/examiners/NEW-{r}"),
        "imports": imports(c, f"IMP{r}"),
        "skills": skills(c, examiner_url),
        "increments": increments(c, f"/labs/{LAB}/cases/COUNT-{r}"),
    }


def run(
    backend: str,
    clients: int,
    rounds: int,
    workers: int,
    port: int | None,
    echo: Echo,
    checkout: str | None = None,
) -> None:
    with database(backend, DEFAULT_ADMIN_URL) as url:
        upgrade(url)
        headers = admin_key(url)
        server = start_server(url, workers, checkout, port=port)
        c = Clients(f"http://127.0.0.1:{server.port}", headers, clients)
        try:
            one = c.clients[0]
            vocabulary = {"skills": sorted({s for k in _skill_sets() for s in k})}
            lab = {"code": LAB, "name": "Race", "timezone": "UTC", "vocabulary": vocabulary}
            assert one.post("/labs", json=lab).status_code == 201
            assert one.put(f"/labs/{LAB}/examiners/E1", json={}).status_code == 201
            assert one.put(f"/labs/{LAB}/cases/C-1", json=CASE).status_code == 201
            echo(
                f"== {backend}: labq serve --workers {workers}, {clients} clients, "
                f"load average {os.getloadavg()[0]:.2f}"
            )
            for r in range(rounds):
                figures = one_round(c, r)
                for name, result in figures.items():
                    echo(f"round {r + 1} {name}: {result}")
            echo(f"load average after: {os.getloadavg()[0]:.2f}")
        finally:
            c.close()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="labq serve processes")
    parser.add_argument("--port", type=int, default=None, help="server port (default: any free)")
    parser.add_argument("--checkout", default=None, help="serve another checkout's code")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        run(backend, args.clients, args.rounds, args.workers, args.port, print, args.checkout)


if __name__ == "__main__":
    main()
