"""Whether a pin can be kept, asked when a supervisor places it rather than first at a solve.

A pin the engine cannot keep is dropped by every solve as ``pin_conflict`` and makes the version
infeasible, so the service checks a new pin at once, against what the verifier would say:

- on its own: the examiner's shift and skills, the workstation's availability and capabilities,
  the exposure window and caps (with what is already logged), the horizon;
- against every other kept placement (pins, and published work in the frozen window): the pair is
  verified together, and a rule the pair breaks that neither breaks alone is a clash with that job
  (a workstation of capacity 2 is checked against all of them at once, as no pair shows it);
- against its predecessors: one that is kept must end by the pin's start, one still to do must be
  able to (its earliest end with every other job relaxed away, ``bounds.relax``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .bounds import relax
from .explain import KeptPlacement, kept_duration, kept_placements
from .plan import Assignment, Plan
from .rules.names import NOT_ITS_OWN, PRECEDENCE
from .snapshot import Job, Snapshot
from .verify import Violation, verify


@dataclass(frozen=True)
class PinProblem:
    """One reason a pin cannot be kept.

    ``rule`` is the verifier's rule name ("precedence" for a predecessor); ``other`` the job it
    clashes with or waits for, if one; ``at`` the time in question in minutes from the epoch (the
    pin's start, or when the predecessor ends at the earliest); ``clash`` says the pin collides
    with other work (a conflict) rather than breaking a rule on its own (invalid).
    """

    rule: str
    other: str | None
    at: int
    clash: bool


def _placement(job: Job, k: KeptPlacement) -> Assignment:
    return Assignment(job.id, k.examiner, k.workstation, k.start, k.start + kept_duration(job, k))


def _broken(snapshot: Snapshot, placements: list[Assignment]) -> set[tuple[str, str | None]]:
    plan = Plan("unknown", None, None, 0.0, tuple(placements))
    return {(v.rule, v.job) for v in verify(snapshot, plan) if v.rule not in NOT_ITS_OWN}


def _shares(a: Assignment, b: Assignment, jobs: Mapping[str, Job]) -> bool:
    """Whether two placements could meet under a rule: a resource in common (the exposure caps
    count per examiner, so the same examiner is enough)."""
    if a.examiner is not None and a.examiner == b.examiner:
        return True
    if a.workstation is not None and a.workstation == b.workstation:
        return True
    return bool(set(jobs[a.job].pools) & set(jobs[b.job].pools))


def pin_problems(snapshot: Snapshot, job_id: str) -> list[PinProblem]:
    """Why the pin of ``job_id`` cannot be kept (empty: it can), most fundamental first."""
    jobs = snapshot.jobs_by_id
    job = jobs[job_id]
    kept = kept_placements(snapshot)
    target = kept[job_id]  # the job's pin governs over a published placement
    pinned = _placement(job, target)
    own: list[Violation] = [
        v
        for v in verify(snapshot, Plan("unknown", None, None, 0.0, (pinned,)))
        if v.job == job_id and v.rule not in NOT_ITS_OWN
    ]
    if own:
        rules = dict.fromkeys(v.rule for v in own)
        return [PinProblem(rule, None, target.start, clash=False) for rule in rules]

    problems: list[PinProblem] = []
    others = [_placement(jobs[j], k) for j, k in kept.items() if j != job_id]
    for other in others:
        if not _shares(pinned, other, jobs):
            continue
        alone = _broken(snapshot, [other])
        together = _broken(snapshot, [pinned, other]) - alone
        for rule in dict.fromkeys(rule for rule, _ in sorted(together)):
            problems.append(PinProblem(rule, other.job, target.start, clash=True))
    if not problems:
        before = _broken(snapshot, others)
        for rule in dict.fromkeys(r for r, _ in sorted(_broken(snapshot, [*others, pinned]))):
            if all(r != rule for r, _ in before):
                problems.append(PinProblem(rule, None, target.start, clash=True))

    relaxed = None
    placed = {a.job: a for a in others}
    for pred in dict.fromkeys(job.after):
        if pred not in jobs or pred == job_id:
            continue  # done already (absent from the snapshot), or a self-reference
        if pred in placed:
            end: int | None = placed[pred].end
        else:
            relaxed = relaxed or relax(snapshot)
            end = relaxed[pred].earliest_end
        if end is None or end > target.start:
            at = end if end is not None else snapshot.horizon
            problems.append(PinProblem(PRECEDENCE, pred, at, clash=False))
    return problems


__all__ = ["PinProblem", "pin_problems"]
