"""Turn database integrity failures into typed domain errors, naming the rule that was broken."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from scheduler.errors import Conflict, DomainError, Invalid, NotFound

_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\S+)")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_NOT_NULL = re.compile(r"NOT NULL constraint failed: (\S+)")


def integrity_error(exc: IntegrityError) -> DomainError:
    """Map an IntegrityError from SQLite or PostgreSQL to NotFound, Conflict or Invalid."""
    orig = exc.orig
    message = str(orig)
    diag = getattr(orig, "diag", None)
    sqlstate = getattr(orig, "sqlstate", None)
    constraint = getattr(diag, "constraint_name", None) if diag is not None else None
    if sqlstate == "23505" or "UNIQUE constraint failed" in message:
        m = _SQLITE_UNIQUE.search(message)
        what = constraint or (m.group(1) if m else "a unique key")
        return Conflict(f"already exists: duplicate value for {what}", rule=what)
    if sqlstate == "23514" or "CHECK constraint failed" in message:
        m = _SQLITE_CHECK.search(message)
        what = constraint or (m.group(1) if m else "a check constraint")
        return Invalid(f"value breaks the rule {what}", rule=what)
    if sqlstate == "23503" or "FOREIGN KEY constraint failed" in message:
        what = constraint or "a foreign key"
        return NotFound(f"refers to something that does not exist ({what})", rule=what)
    if sqlstate == "23502" or "NOT NULL constraint failed" in message:
        m = _SQLITE_NOT_NULL.search(message)
        what = getattr(diag, "column_name", None) or (m.group(1) if m else "a required field")
        return Invalid(f"missing required value: {what}", rule=what)
    return Invalid(f"integrity rule broken: {message.splitlines()[0]}")


def flush(session: Session) -> None:
    """Flush pending changes, raising a typed error on an integrity failure.

    After an error the unit of work is spoiled and the caller's rollback discards all of it, so
    nothing is half-written.
    """
    try:
        session.flush()
    except IntegrityError as exc:
        raise integrity_error(exc) from None
    except StatementError as exc:
        if isinstance(exc.orig, ValueError):  # e.g. a naive datetime refused by UtcDateTime
            raise Invalid(str(exc.orig)) from None
        raise
