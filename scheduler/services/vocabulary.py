"""A lab's vocabulary: the skills, workstation capabilities and stages it has defined.

The one rule: every term a write names (an examiner's skills, a workstation's capabilities, a
job's stage, skills and capabilities, directly or through an import) is one the lab has defined,
and a write naming unknown terms is refused with all of them listed, nothing written. A term
still in use (by an examiner, a workstation or a job of the lab, whatever its status) cannot be
removed: the refusal names who uses it, so every stored term stays in the vocabulary.

Writers of one lab's data hold its lock (``lock_lab``: the API takes it for every write, the import
itself), so a term cannot be removed between a write's check and its commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.orm import Session

from models import (
    Case,
    Device,
    Examiner,
    ExaminerSkill,
    Job,
    JobCapability,
    JobSkill,
    Lab,
    LabTerm,
    Workstation,
    WorkstationCapability,
)
from models.casework import STAGES
from models.lab import DEFAULT_VOCABULARY, TERM_KINDS
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.services import audit

#: How a kind of term is named in requests and responses (and in the API's paths).
PLURAL = {"skill": "skills", "capability": "capabilities", "stage": "stages"}
KIND_OF = {plural: kind for kind, plural in PLURAL.items()}
LISTED_USERS = 10  # per kind of user in a refusal; the count says how many in all


@dataclass(frozen=True)
class Vocabulary:
    """A lab's terms by kind (``skill``, ``capability``, ``stage``), each sorted."""

    terms: Mapping[str, tuple[str, ...]]

    @cached_property
    def _known(self) -> frozenset[tuple[str, str]]:
        """Every ``(kind, term)``: an import asks once for each term it names."""
        return frozenset((kind, term) for kind, terms in self.terms.items() for term in terms)

    def of(self, kind: str) -> tuple[str, ...]:
        return self.terms.get(kind, ())

    def has(self, kind: str, term: str) -> bool:
        return (kind, term) in self._known

    def as_lists(self) -> dict[str, list[str]]:
        """``{"skills": [...], "capabilities": [...], "stages": [...]}``, as the API shows it."""
        return {PLURAL[kind]: list(self.of(kind)) for kind in TERM_KINDS}


class Use(NamedTuple):
    """A term a write names, and where in the request it is named (``skills[1]``)."""

    field: str
    kind: str
    term: str


def vocabulary_of(session: Session, lab: Lab) -> Vocabulary:
    found: dict[str, list[str]] = {kind: [] for kind in TERM_KINDS}
    for kind, term in session.execute(
        select(LabTerm.kind, LabTerm.term)
        .where(LabTerm.lab_id == lab.id)
        .order_by(LabTerm.kind, LabTerm.term)
    ):
        found[kind].append(term)
    return Vocabulary({kind: tuple(terms) for kind, terms in found.items()})


def uses_of(field: str, kind: str, terms: Iterable[str]) -> list[Use]:
    """The uses of a list of terms at ``field`` (``skills`` -> ``skills[0]``, ...)."""
    return [Use(f"{field}[{index}]", kind, term) for index, term in enumerate(terms)]


def _unknown_message(lab: Lab, use: Use) -> str:
    if use.kind == "stage" and use.term not in STAGES:
        return _not_a_stage(use.term)
    return (
        f"{use.kind} {use.term!r} is not in the vocabulary of lab {lab.code!r} "
        f"(add it with PUT /labs/{lab.code}/vocabulary/{PLURAL[use.kind]}/{use.term})"
    )


def _not_a_stage(term: str) -> str:
    return f"{term!r} is not a stage labq plans ({', '.join(STAGES)})"


def unknown(vocabulary: Vocabulary, lab: Lab, uses: Iterable[Use]) -> list[dict[str, str]]:
    """One problem for each use of a term the lab has not defined."""
    return [
        {"field": use.field, "message": _unknown_message(lab, use), "type": "unknown_term"}
        for use in uses
        if not vocabulary.has(use.kind, use.term)
    ]


def require_known(session: Session, lab: Lab, uses: Iterable[Use]) -> None:
    """Refuse (422, every unknown term listed) a write that names terms the lab has not defined."""
    problems = unknown(vocabulary_of(session, lab), lab, uses)
    if problems:
        raise Invalid.listing(problems)


# --- who uses a term ------------------------------------------------------------------------------


def _job_ref(lab: Lab) -> Select[Any]:
    """``case/device/job`` of the lab's jobs, to be narrowed by the caller."""
    return (
        select(Case.external_ref + "/" + Device.external_ref + "/" + Job.external_ref)
        .select_from(Job)
        .join(Device, Job.device_id == Device.id)
        .join(Case, Device.case_id == Case.id)
        .where(Job.lab_id == lab.id)
    )


def _users(lab: Lab, kind: str, term: str) -> dict[str, Select[Any]]:
    """The references of whoever uses ``term``, by kind of user."""
    jobs = _job_ref(lab)
    if kind == "skill":
        return {
            "examiners": select(Examiner.external_ref)
            .join(ExaminerSkill, ExaminerSkill.examiner_id == Examiner.id)
            .where(Examiner.lab_id == lab.id, ExaminerSkill.skill == term),
            "jobs": jobs.join(JobSkill, JobSkill.job_id == Job.id).where(JobSkill.skill == term),
        }
    if kind == "capability":
        return {
            "workstations": select(Workstation.external_ref)
            .join(WorkstationCapability, WorkstationCapability.workstation_id == Workstation.id)
            .where(Workstation.lab_id == lab.id, WorkstationCapability.capability == term),
            "jobs": jobs.join(JobCapability, JobCapability.job_id == Job.id).where(
                JobCapability.capability == term
            ),
        }
    return {"jobs": jobs.where(Job.stage == term)}


def in_use(session: Session, lab: Lab, kind: str, term: str) -> dict[str, Any] | None:
    """Who uses ``term`` (the first few references and a count per kind of user), or None."""
    found: dict[str, Any] = {}
    for users, stmt in _users(lab, kind, term).items():
        count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        if count:
            refs = session.scalars(stmt.order_by(stmt.selected_columns[0]).limit(LISTED_USERS))
            found[users] = {"count": count, "refs": list(refs)}
    return {"kind": kind, "term": term, **found} if found else None


def _describe(use: dict[str, Any]) -> str:
    parts = []
    for users in ("examiners", "workstations", "jobs"):
        if users in use:
            refs, count = use[users]["refs"], use[users]["count"]
            more = f" and {count - len(refs)} more" if count > len(refs) else ""
            parts.append(f"{users} {', '.join(refs)}{more}")
    return f"{use['kind']} {use['term']!r} is in use by {'; '.join(parts)}"


def _refuse_removal(session: Session, lab: Lab, removed: Iterable[tuple[str, str]]) -> None:
    """409 naming who uses each of the terms to be removed, if any is in use."""
    used = [u for kind, term in removed if (u := in_use(session, lab, kind, term)) is not None]
    if used:
        raise Conflict(
            "; ".join(_describe(u) for u in used)
            + ": change or remove those first (a term in use stays in the vocabulary)",
            in_use=used,
        )


# --- changing the vocabulary ---------------------------------------------------------------------


def _check_stages(stages: Iterable[tuple[str, str]]) -> None:
    problems = [
        {
            "field": field,
            "message": _not_a_stage(term),
            "type": "unknown_stage",
        }
        for field, term in stages
        if term not in STAGES
    ]
    if problems:
        raise Invalid.listing(problems)


def terms_for_new_lab(vocabulary: Mapping[str, Iterable[str]] | None) -> list[tuple[str, str]]:
    """``(kind, term)`` of a new lab's vocabulary (``{"skills": [...], ...}``; None: the
    default), checked before the lab is made."""
    if vocabulary is None:
        terms = {kind: set(DEFAULT_VOCABULARY[kind]) for kind in TERM_KINDS}
    else:
        terms = {kind: set(vocabulary.get(PLURAL[kind], ())) for kind in TERM_KINDS}
    _check_stages((f"vocabulary.stages[{i}]", s) for i, s in enumerate(sorted(terms["stage"])))
    return [(kind, term) for kind in TERM_KINDS for term in sorted(terms[kind])]


def _record(
    session: Session,
    lab: Lab,
    action: str,
    before: Vocabulary | None,
    after: Vocabulary,
    actor: str,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="lab_vocabulary",
        entity_id=lab.id,
        entity_ref=lab.code,
        lab_id=lab.id,
        before=before.as_lists() if before is not None else None,
        after=after.as_lists(),
    )


def define_new_lab(
    session: Session, lab: Lab, terms: Iterable[tuple[str, str]], *, actor: str
) -> None:
    """Store a new lab's vocabulary (``terms_for_new_lab``) and audit it."""
    rows = [{"lab_id": lab.id, "kind": kind, "term": term} for kind, term in terms]
    if rows:
        session.execute(insert(LabTerm), rows)
    _record(session, lab, "vocabulary.create", None, vocabulary_of(session, lab), actor)


def replace_vocabulary(
    session: Session, lab: Lab, *, actor: str, terms: Mapping[str, Iterable[str]]
) -> Vocabulary:
    """Make the lab's vocabulary exactly ``terms`` (``{"skills": [...], ...}``; a kind left out
    is emptied). Removing a term in use is refused (409), naming every such term and its users."""
    wanted = {kind: set(terms.get(PLURAL[kind], ())) for kind in TERM_KINDS}
    _check_stages((f"stages[{i}]", s) for i, s in enumerate(terms.get("stages", ())))
    before = vocabulary_of(session, lab)
    removed = [(k, t) for k in TERM_KINDS for t in before.of(k) if t not in wanted[k]]
    added = [(k, t) for k in TERM_KINDS for t in sorted(wanted[k]) if not before.has(k, t)]
    if not removed and not added:
        return before
    _refuse_removal(session, lab, removed)
    for kind, term in removed:
        session.execute(
            delete(LabTerm).where(
                LabTerm.lab_id == lab.id, LabTerm.kind == kind, LabTerm.term == term
            )
        )
    if added:
        session.execute(
            insert(LabTerm), [{"lab_id": lab.id, "kind": k, "term": t} for k, t in added]
        )
    after = vocabulary_of(session, lab)
    _record(session, lab, "vocabulary.replace", before, after, actor)
    return after


def add_term(session: Session, lab: Lab, *, actor: str, kind: str, term: str) -> bool:
    """Define one term; whether it is new (defining a known term again changes nothing)."""
    if kind == "stage":
        _check_stages([("term", term)])
    before = vocabulary_of(session, lab)
    if before.has(kind, term):
        return False
    session.execute(insert(LabTerm).values(lab_id=lab.id, kind=kind, term=term))
    _record(session, lab, "vocabulary.add", before, vocabulary_of(session, lab), actor)
    return True


def remove_term(session: Session, lab: Lab, *, actor: str, kind: str, term: str) -> None:
    """Remove one term: 404 if the lab has not defined it, 409 (naming its users) if in use."""
    before = vocabulary_of(session, lab)
    if not before.has(kind, term):
        raise NotFound(f"{kind} {term!r} is not in the vocabulary of lab {lab.code!r}")
    _refuse_removal(session, lab, [(kind, term)])
    session.execute(
        delete(LabTerm).where(LabTerm.lab_id == lab.id, LabTerm.kind == kind, LabTerm.term == term)
    )
    _record(session, lab, "vocabulary.remove", before, vocabulary_of(session, lab), actor)
