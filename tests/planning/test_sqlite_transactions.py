"""SQLite units of work that read and then write survive a concurrent commit (no "locked")."""

from __future__ import annotations

import threading

from sqlalchemy import text

from scheduler.db import make_engine


def test_a_read_then_write_transaction_survives_a_concurrent_writer(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE beat (n INTEGER)"))
    read_done, other_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def request() -> None:  # an API request: authenticate (read), then change something
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT count(*) FROM beat")).scalar()
                read_done.set()
                other_done.wait(timeout=2)  # let the heartbeat commit first, if it can
                conn.execute(text("INSERT INTO beat VALUES (1)"))
        except BaseException as exc:
            errors.append(exc)
            read_done.set()

    def heartbeat() -> None:  # the worker's short write transaction
        read_done.wait(timeout=30)
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO beat VALUES (2)"))
        except BaseException as exc:
            errors.append(exc)
        other_done.set()

    threads = [threading.Thread(target=request), threading.Thread(target=heartbeat)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT n FROM beat")).scalars()) == [1, 2]
    engine.dispose()
