"""What the domain services announce, for the layers above them to act on.

A service records a change and announces it; it never calls upward. The planning layer listens
(`scheduler.continuous.install`, called by every entry point: the app, the CLI, the tests) and
acts inside the same unit of work: it queues the repair run an escalation, urgent cases or an
absence call for, and refuses a pin it cannot keep (its error rolls the change back). An event
nobody listens for is a wiring mistake, refused loudly rather than silently dropping a repair
(docs/architecture.md §7.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from models import Absence, Case, Examiner, Job, Lab, PriorityLevel


@dataclass(frozen=True)
class CaseEscalated:
    """A case rose to a more urgent level (directly, by a link or by a triage flag)."""

    lab: Lab
    case: Case
    level: PriorityLevel
    actor: str
    reason: str | None = None


@dataclass(frozen=True)
class CasesImported:
    """A bulk import wrote cases: the new ones (level code, status) and those whose level changed
    (reference, level before, level after, status)."""

    lab: Lab
    new_cases: Sequence[tuple[str, str]]
    raised: Sequence[tuple[str, str, str, str]]
    actor: str


@dataclass(frozen=True)
class AbsenceRecorded:
    examiner: Examiner
    absence: Absence
    actor: str


@dataclass(frozen=True)
class PinPlaced:
    """A job was pinned to start at or after ``now`` (a pin in the past records work begun)."""

    lab: Lab
    job: Job
    now: datetime


Event = CaseEscalated | CasesImported | AbsenceRecorded | PinPlaced
E = TypeVar("E", CaseEscalated, CasesImported, AbsenceRecorded, PinPlaced)
_listeners: dict[type, list[Callable[[Session, Any], object]]] = {}


def listen(kind: type[E], listener: Callable[[Session, E], object]) -> None:
    """Call ``listener(session, event)`` for every ``kind`` announced (once per listener)."""
    listeners = _listeners.setdefault(kind, [])
    if listener not in listeners:
        listeners.append(listener)


def announce(session: Session, event: Event) -> None:
    """Hand ``event`` to its listeners, in the caller's unit of work; their errors propagate."""
    listeners = _listeners.get(type(event))
    if not listeners:
        raise RuntimeError(
            f"nothing listens for {type(event).__name__}: call scheduler.continuous.install() "
            "where the process starts"
        )
    for listener in listeners:
        listener(session, event)
