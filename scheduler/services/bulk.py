"""Bulk rows built before a write transaction and written in one short stretch inside it.

A bulk writer (the case import) works out every row while it holds no lock: each value is put
in the driver's form then (the column type's bind processing, so rows skip SQLAlchemy's
per-row work later). What only the write can know is left open in ``NewRows``: ids of rows not
yet inserted, written as ``~k`` for the k-th new row of a table (a negative number, never a real
id), and the write's instant. Inside the write transaction ``allocate`` gives the new rows their
ids, ``close`` fills them in, and ``insert`` sends the rows with one ``executemany`` (SQLite) or
``COPY`` (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


class NewRows:
    """New rows of one table, in column order and the driver's form, with ids and instant open.

    ``numbered``: the table's ``id`` comes first and is allocated at the write (``add`` returns
    the ``~k`` that stands for it). ``refers``: columns that may hold ``~k`` of another table's
    new rows (``{"case_id": Case}``). ``stamped``: columns that take the write's instant.
    """

    def __init__(
        self,
        model: Any,
        dialect: Dialect,
        columns: Sequence[str],
        *,
        numbered: bool = False,
        refers: Mapping[str, Any] | None = None,
        stamped: Sequence[str] = (),
    ) -> None:
        self.model = model
        self.numbered = numbered
        self.columns = (("id",) if numbered else ()) + tuple(columns) + tuple(stamped)
        self.refers = dict(refers or {})
        if numbered:
            self.refers["id"] = model
        self.stamped = tuple(stamped)
        table = model.__table__
        self._processors = [_processor(table.c[name], dialect) for name in columns]
        self._stamp_processor = _processor(table.c[stamped[0]], dialect) if stamped else None
        self._open = (None,) * len(self.stamped)
        self.rows: list[list[Any]] = []

    def add(self, *values: Any) -> int:
        """Append a row (``columns``' values; no id, no stamps); returns ``~k`` for its id."""
        k = len(self.rows)
        row: list[Any] = [~k] if self.numbered else []
        row.extend(v if p is None else p(v) for v, p in zip(values, self._processors, strict=True))
        row.extend(self._open)
        self.rows.append(row)
        return ~k

    def __len__(self) -> int:
        return len(self.rows)

    def close(self, ids: Mapping[Any, Sequence[int]], instant: Any) -> list[tuple[Any, ...]]:
        """The rows with every ``~k`` replaced by the k-th id of ``ids[model]`` and the stamps
        set to ``instant`` (a Python value; it is put in the driver's form here)."""
        linked = [(self.columns.index(c), ids[m]) for c, m in self.refers.items()]
        if self._stamp_processor is not None:
            instant = self._stamp_processor(instant)
        first_stamp = len(self.columns) - len(self.stamped)
        closed = []
        for row in self.rows:
            for at, new_ids in linked:
                value = row[at]
                if value is not None and value < 0:
                    row[at] = new_ids[~value]
            for at in range(first_stamp, len(row)):
                row[at] = instant
            closed.append(tuple(row))
        return closed


def _processor(column: Any, dialect: Dialect) -> Any:
    """What SQLAlchemy does to the column's values on their way to ``dialect``'s driver (for
    an instant on SQLite: UTC, then the text form every other write stores)."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def new_ref(value: int) -> bool:
    """Whether an id taken from ``NewRows`` stands for a row not yet inserted."""
    return value < 0


def allocate(session: Session, model: Any, count: int) -> Sequence[int]:
    """Ids for ``count`` new rows of ``model``'s table, inside the write transaction.

    PostgreSQL: the table's sequence. SQLite: the ids after the largest, as SQLite itself would
    give them (no table uses AUTOINCREMENT): the transaction holds the database's write lock, so
    no other writer can take them first.
    """
    if count == 0:
        return ()
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        return session.scalars(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": f'"{table.name}"', "n": count},
        ).all()
    first = (session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1
    return range(first, first + count)


def insert(
    session: Session, model: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (in the driver's form, ``columns`` in order) in the session's transaction."""
    if not rows:
        return
    table = model.__table__
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        _copy(session, table.name, columns, rows)
        return
    quote = dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    session.connection().exec_driver_sql(statement, list(rows))


def _copy(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """PostgreSQL: load rows with COPY, in the session's transaction (the fastest bulk path).

    The driver's integrity errors (a case a concurrent import created first, say) come back as
    SQLAlchemy's, so the caller maps them to the same typed errors as on any other path.
    """
    import psycopg
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    connection = session.connection().connection.driver_connection
    assert connection is not None
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(statement.as_string(connection), None, exc) from exc
