"""SQLite units of work: a read then write survives a concurrent commit (no "locked"), and the
writers of one file take the write lock in arrival order."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from scheduler.db import is_lock_timeout, make_engine, writer_queue
from scheduler.settings import Settings


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


def test_writers_of_one_file_take_the_lock_in_arrival_order(tmp_path):
    """A writer that arrived first is let in first, however the later ones poll for the lock."""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE turn (writer TEXT)"))
    queue = writer_queue(url)
    order: list[str] = []

    def writer(name: str) -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO turn VALUES (:w)"), {"w": name})
            order.append(name)

    holder = engine.connect()
    holder.begin()  # holds the queue (and the lock), like a long import
    threads = []
    for n, name in enumerate(("first", "second", "third")):
        thread = threading.Thread(target=writer, args=(name,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 60
        while queue.waiting < n + 1 and time.monotonic() < deadline:  # until it has joined
            time.sleep(0.01)
        assert queue.waiting == n + 1
    holder.commit()
    holder.close()
    for thread in threads:
        thread.join(timeout=60)
    assert order == ["first", "second", "third"]
    engine.dispose()


def test_a_writer_that_waited_too_long_leaves_the_queue_to_the_next(tmp_path):
    url = f"sqlite:///{tmp_path / 'leave.db'}"
    engine = make_engine(url, settings=Settings(database_url=url, db_busy_timeout_seconds=0.05))
    queue = writer_queue(url)
    holder = engine.connect()
    holder.begin()
    other = engine.connect()
    with pytest.raises(OperationalError) as refused:
        other.begin()
    assert is_lock_timeout(refused.value) and queue.waiting == 0
    other.close()
    holder.rollback()
    holder.close()
    with engine.begin() as conn:  # the queue is free again: nobody left holding it
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    engine.dispose()
