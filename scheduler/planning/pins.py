"""A pin is checked when it is placed: the lab's snapshot with the pin, the engine's verdict
(``scheduler.core.pins``), and a refusal a supervisor can act on.

A pin that clashes with other kept work is a conflict (409) naming the other job; one that
breaks a rule on its own (outside the shift, over an exposure cap, before its predecessor can
end) is invalid (422) naming the rule. Jobs are named by case reference, device and stage, times
in the lab's time zone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models import Job, Lab
from scheduler.core.pins import PinProblem, pin_problems
from scheduler.core.rules import names
from scheduler.errors import Conflict, Invalid
from scheduler.planning.loader import load_snapshot
from scheduler.planning.loading.idmap import IdMap
from scheduler.planning.words import job_name, local_time

#: How the rules a pin can break read to a supervisor.
_RULES: dict[str, str] = {
    names.HORIZON: "lies outside the planning horizon",
    names.RELEASE: "starts before the job can begin (its device arrives or it is released later)",
    names.END: "runs past the end of the planning horizon",
    names.EXAMINER_UNKNOWN: "names an examiner who is not available to plan",
    names.EXAMINER_NEEDED: "needs an examiner",
    names.EXAMINER_NOT_NEEDED: "names an examiner for a job with no attended part",
    names.SKILLS: "names an examiner without the job's skills",
    names.EXAMINER_ALLOW_LIST: "names an examiner not on the job's examiner list",
    names.EXAMINER_AVAILABILITY: "is outside the examiner's shift",
    names.EXAMINER_OVERLAP: "overlaps the examiner's other work",
    names.WORKSTATION_UNKNOWN: "names a workstation that is not available to plan",
    names.WORKSTATION_NEEDED: "needs a workstation",
    names.WORKSTATION_NOT_NEEDED: "names a workstation for a job with no machine part",
    names.CAPABILITIES: "names a workstation without the job's capabilities",
    names.MACHINE_BY_WORKSTATION: "names a workstation the job cannot run on",
    names.WORKSTATION_AVAILABILITY: "is outside the workstation's availability",
    names.WORKSTATION_CAPACITY: "puts the workstation over its capacity",
    names.POOL_CAPACITY: "puts a licence pool over its capacity",
    names.MAX_SEVERITY: "gives the examiner material above their severity limit",
    names.EXPOSURE_WINDOW: "is outside the examiner's exposure window",
    names.EXPOSURE_DAILY_CAP: "breaks the examiner's daily exposure cap",
    names.EXPOSURE_SEVERE_DAILY_CAP: "breaks the examiner's daily cap for the most severe material",
    names.EXPOSURE_WEEKLY_CAP: "breaks the examiner's weekly exposure cap",
    names.PRECEDENCE: "starts before its predecessor can end",
}

#: Rules whose refusal names the pin's examiner or workstation field rather than its start.
_EXAMINER_RULES = frozenset(
    {names.SKILLS, names.EXAMINER_ALLOW_LIST, names.EXAMINER_UNKNOWN, names.MAX_SEVERITY}
)
_WORKSTATION_RULES = frozenset(
    {names.CAPABILITIES, names.MACHINE_BY_WORKSTATION, names.WORKSTATION_UNKNOWN}
)


def _sentence(problem: PinProblem, idmap: IdMap) -> str:
    what = _RULES.get(problem.rule, f"breaks the rule {problem.rule}")
    when = local_time(idmap.timeline, problem.at)
    if problem.rule == names.PRECEDENCE and problem.other is not None:
        return (
            f"{what}: {job_name(problem.other)} ends at the earliest {when}"
            if problem.at < idmap.timeline.horizon
            else f"{what}: {job_name(problem.other)} cannot be finished inside the horizon"
        )
    if problem.other is not None:
        return f"{what} at {when}: it clashes with {job_name(problem.other)}"
    return f"{what} at {when}"


def check_pin(session: Session, lab: Lab, job: Job, now: datetime) -> None:
    """Refuse the pin just set on ``job`` (flushed, not committed) if no solve could keep it."""
    snapshot, idmap = load_snapshot(session, lab, now)
    try:
        sid = idmap.job_sid(job.id)
    except KeyError:
        return  # not planned at all (left out as unplannable, with its reason on the version)
    pinned = next((j for j in snapshot.jobs if j.id == sid), None)
    if pinned is None or pinned.pin is None:
        return  # the loader reported the pin (e.g. on an inactive examiner) rather than load it
    problems = pin_problems(snapshot, sid)
    if not problems:
        return
    detail = f"the pin of {job_name(sid)} cannot be kept: it " + "; it ".join(
        _sentence(p, idmap) for p in problems
    )
    first = problems[0]
    field = "start"
    if first.rule in _EXAMINER_RULES:
        field = "examiner"
    elif first.rule in _WORKSTATION_RULES:
        field = "workstation"
    if any(p.clash for p in problems):
        raise Conflict(detail)
    raise Invalid(detail, field=field)
