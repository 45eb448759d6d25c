"""Every call that queues a solve run answers with it: a ``Location`` header and a ``run`` link.

The services note the run they queue or join in the unit of work (`runs.queued_in`); a route that
may have queued one (an escalation, an import, a PUT or PATCH that raises a level, a link or a
triage flag) calls `answer_with_run` after its work. A route that answers 201 keeps
``Location`` for what it created and names the run in the body only.
"""

from __future__ import annotations

from fastapi import Response
from sqlalchemy.orm import Session

from api.schemas.common import RunLink
from scheduler.planning import runs


def run_path(lab: str, run_id: int) -> str:
    return f"/labs/{lab}/solve-runs/{run_id}"


def answer_with_run(session: Session, lab: str, response: Response | None) -> RunLink | None:
    """The run queued in this request, also set as ``Location`` when ``response`` is given;
    None if none was."""
    run = runs.queued_in(session)
    if run is None:
        return None
    href = run_path(lab, run.id)
    if response is not None:
        response.headers["Location"] = href
    return RunLink(id=run.id, status=run.status, href=href)
