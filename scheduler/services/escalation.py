"""The escalation policy: which level a link or a triage flag raises a case to.

Escalation itself (`casework.escalate_case` and the triggers that call it) announces
`events.CaseEscalated`; the planning layer queues the repair run (docs/architecture.md §7.7).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Case, PriorityLevel, TriageFlag

ESCALATING_FLAGS = frozenset({"hash_match", "classifier", "linked_report"})
"""Triage flags that raise a case one level; ``manual`` flags are notes (escalate explicitly)."""


def levels_of(session: Session, lab_id: int) -> list[PriorityLevel]:
    """The lab's priority levels, most urgent first."""
    return list(
        session.scalars(
            select(PriorityLevel).where(PriorityLevel.lab_id == lab_id).order_by(PriorityLevel.rank)
        )
    )


def level_after_flag(session: Session, case: Case, kind: str) -> PriorityLevel | None:
    """The level a new triage flag of ``kind`` raises ``case`` to, or ``None`` (no change).

    Policy: a ``hash_match``, ``classifier`` or ``linked_report`` flag raises the case by exactly
    one level (to the next more urgent rank of the lab's scheme), never above the top level; a
    case already at the top stays there. Each kind raises a case once: a second flag of a kind the
    case already carries is recorded but changes nothing (repeated hits of one hash set are one
    signal). ``manual`` flags never change the level; a supervisor escalates explicitly. Call it
    before the new flag is added.
    """
    if kind not in ESCALATING_FLAGS:
        return None
    seen = session.scalar(
        select(TriageFlag.id).where(TriageFlag.case_id == case.id, TriageFlag.kind == kind).limit(1)
    )
    if seen is not None:
        return None
    levels = levels_of(session, case.lab_id)
    current = next((lv for lv in levels if lv.id == case.priority_level_id), None)
    if current is None:
        return None
    above = [lv for lv in levels if lv.rank < current.rank]
    return above[-1] if above else None


def escalation_for_link(session: Session, case: Case, other: Case) -> tuple[Case, PriorityLevel]:
    """Of two newly linked cases, the less urgent one and the level it rises to.

    Returns ``(case, its own level)`` (no change) when both are equally urgent.
    """
    mine = session.get(PriorityLevel, case.priority_level_id)
    theirs = session.get(PriorityLevel, other.priority_level_id)
    assert mine is not None and theirs is not None
    if theirs.rank < mine.rank:
        return case, theirs
    if mine.rank < theirs.rank:
        return other, mine
    return case, mine
