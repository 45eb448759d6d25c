"""A list query and the key it is ordered and resumed by: what a service or view gives a route
that pages through a list (``api/pagination.py``), so the route runs no query of its own
(docs/architecture.md §7.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute


@dataclass(frozen=True)
class Listing:
    """``stmt`` selects ORM entities; ``key`` is their integer column the list is ordered by."""

    stmt: Select[Any]
    key: InstrumentedAttribute[int]


def by_id(stmt: Select[Any]) -> Listing:
    """``stmt``'s entities in id order."""
    entity = stmt.column_descriptions[0]["entity"]
    return Listing(stmt, entity.id)
