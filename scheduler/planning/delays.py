"""Say so when a run makes an urgent case finish later than the published schedule has it.

A repair run changes what its trigger forces and the room it needs; when that room is taken from
another P1 or P2 case, the version says which case, by how much, and whose work took its place
on which resource, in the lab's terms (docs/architecture.md, §7.7).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from scheduler.core.plan import Assignment, Plan
from scheduler.core.snapshot import Job, PreviousAssignment, Snapshot
from scheduler.planning.loading.idmap import IdMap
from scheduler.planning.words import job_name, local_time


def urgent_delays(snapshot: Snapshot, plan: Plan, idmap: IdMap) -> list[str]:
    """One warning per P1/P2 case whose last planned job ends later than in ``previous``."""
    if not snapshot.previous:
        return []
    jobs = snapshot.jobs_by_id
    placed = {a.job: a for a in plan.assignments}
    case_of = {sid: sid.partition("/")[0] for sid in jobs}
    before: dict[str, int] = defaultdict(int)
    after: dict[str, int] = defaultdict(int)
    late_jobs: dict[str, list[tuple[str, int]]] = defaultdict(list)  # case -> (job, old start)
    previous = {p.job: p for p in snapshot.previous}
    for sid, p in previous.items():
        job = jobs.get(sid)
        if job is None:
            continue
        case = case_of[sid]
        if not idmap.is_urgent(case):
            continue
        end = p.start + job.duration_on(p.workstation)
        before[case] = max(before[case], end)
        now = placed.get(sid)
        after[case] = max(after[case], idmap.timeline.horizon if now is None else now.end)
        if now is None or now.start > p.start:
            late_jobs[case].append((sid, p.start))
    warnings = []
    for case in sorted(before, key=lambda c: (before[c] - after[c], c)):
        if after[case] <= before[case]:
            continue
        hours = (after[case] - before[case]) / 60
        level = idmap.case_level.get(case, "")
        ends = (
            local_time(idmap.timeline, after[case])
            if after[case] < idmap.timeline.horizon
            else "after the planning horizon"
        )
        takers = _takers(late_jobs[case], jobs, previous, placed, case_of)
        because = f": {takers}" if takers else ""
        warnings.append(
            f"{case} ({level}) now finishes {ends}, {hours:.1f} h later than in the published "
            f"schedule{because}"
        )
    return warnings


def _takers(
    late: list[tuple[str, int]],
    jobs: Mapping[str, Job],
    previous: dict[str, PreviousAssignment],
    placed: dict[str, Assignment],
    case_of: dict[str, str],
) -> str:
    """Whose newly placed work now holds a delayed job's examiner, workstation or pool."""
    said: list[str] = []
    for sid, old_start in late:
        job, now = jobs[sid], placed.get(sid)
        until = now.start if now is not None else old_start + job.duration_on(None)
        prev = previous[sid]
        resources = {("examiner", prev.examiner), ("workstation", prev.workstation)} | {
            ("pool", pool) for pool in job.pools
        }
        for other in placed.values():
            if case_of.get(other.job) == case_of[sid] or other.job not in jobs:
                continue
            if other.job in previous and previous[other.job].start == other.start:
                continue  # it was there before: not what took the room
            if not (other.start < until and other.end > old_start):
                continue
            held = {("examiner", other.examiner), ("workstation", other.workstation)} | {
                ("pool", pool) for pool in jobs[other.job].pools
            }
            shared = sorted(r for r in resources & held if r[1] is not None)
            if shared:
                kind, name = shared[0]
                what = f"the {name} licences" if kind == "pool" else f"{kind} {name}"
                text = f"{job_name(sid)} waits for {what}, now given to {job_name(other.job)}"
                if text not in said:
                    said.append(text)
                break
        if len(said) >= 2:
            break
    return "; ".join(said)
