"""The console's pages (docs/architecture.md §7.8).

Reads go through the planning layer's read models (scheduler/planning/views/, board.py,
console.py); writes through the same services as the API routes, under the same role
declarations (``page(*roles)`` is ``allow(*roles)`` for a signed-in browser), so they are checked
and audited alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import defer

from api.console import auth
from api.console.auth import COOKIE, PRE_COOKIE, Page, ViewerDep, page
from api.console.render import render
from api.deps import (
    CASE_READ,
    CASE_WRITE,
    ESCALATE,
    MANAGE,
    READ,
    REF_PATTERN,
    ReadSessionDep,
    SessionDep,
    principal_for_token,
)
from models import (
    Case,
    Device,
    Examiner,
    Job,
    Lab,
    PriorityLevel,
    ScheduleVersion,
    TriageFlag,
)
from models.base import utcnow
from scheduler.errors import DomainError, Forbidden, Invalid
from scheduler.planning import board as boards
from scheduler.planning import runs, views
from scheduler.planning.publish import current_version
from scheduler.services import casework, console_sessions, resources
from scheduler.services.labs import get_level
from scheduler.services.resources import get_examiner, get_workstation

router = APIRouter()
ReadPage = Annotated[Page, page(*READ)]


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: never another site (an open redirect)."""
    if not value:
        return "/ui/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/ui/") or "\\" in value:
        return "/ui/"
    return value


def _home(role: str, lab_code: str | None) -> str:
    if lab_code is None:
        return "/ui/labs"
    if role == "examiner":
        return f"/ui/labs/{lab_code}/me"
    return f"/ui/labs/{lab_code}/board"


# ---- sign-in ------------------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    token = auth.new_sign_in_token()
    response = render(request, "sign_in.html", csrf=token, next=_safe_next(next), error=None)
    auth.set_cookie(request, response, PRE_COOKIE, token, max_age=3600)
    return response


@router.post("/sign-in")
async def sign_in(
    request: Request, session: SessionDep, reader: ReadSessionDep, background: BackgroundTasks
) -> Response:
    await auth.check_sign_in_csrf(request)
    fields = await auth.form_fields(request)
    token = fields.get("key", "").strip()
    wanted = _safe_next(fields.get("next"))
    if not token:
        return _sign_in_again(request, "Enter an API key.")
    try:
        principal = await principal_for_token(request, reader, background, token)
    except DomainError as exc:
        if exc.status == 401:
            return _sign_in_again(request, "That key is unknown, malformed or revoked.")
        raise
    secret = await run_in_threadpool(
        lambda: console_sessions.start(
            session,
            key_id=principal.key_id,
            actor=principal.actor,
            lab_id=principal.lab_id,
            idle=auth.idle(request),
        )
    )
    target = wanted if wanted != "/ui/" else _home(principal.role, principal.lab_code)
    response = RedirectResponse(target, status_code=303)
    max_age = int(auth.idle(request).total_seconds()) + 24 * 3600
    auth.set_cookie(request, response, COOKIE, secret, max_age=max_age)
    response.delete_cookie(PRE_COOKIE, path=auth.PATH)
    return response


def _sign_in_again(request: Request, error: str) -> Response:
    token = auth.new_sign_in_token()
    response = render(
        request, "sign_in.html", status_code=401, csrf=token, next="/ui/", error=error
    )
    auth.set_cookie(request, response, PRE_COOKIE, token, max_age=3600)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep, who: ViewerDep) -> Response:
    secret = request.cookies.get(COOKIE, "")
    await auth.check_csrf(request, secret)
    await run_in_threadpool(
        console_sessions.end,
        session,
        secret,
        actor=who.principal.actor,
        lab_id=who.principal.lab_id,
    )
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=auth.PATH)
    return response


# ---- home ---------------------------------------------------------------------------------


@router.get("/")
async def home(who: ViewerDep) -> Response:
    p = who.principal
    return RedirectResponse(_home(p.role, p.lab_code), status_code=303)


@router.get("/labs")
def labs(request: Request, reader: ReadSessionDep, who: ViewerDep) -> Response:
    query = select(Lab).order_by(Lab.code)
    if who.principal.lab_id is not None:
        query = query.where(Lab.id == who.principal.lab_id)
    found = list(reader.scalars(query))
    return render(request, "labs.html", viewer=who, labs=found, title="Labs")


# ---- board --------------------------------------------------------------------------------


def _today(lab: Lab):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return utcnow().astimezone(ZoneInfo(lab.timezone)).date()


@router.get("/labs/{lab}/board")
def board_page(
    request: Request,
    p: ReadPage,
    days: Annotated[int, Query(ge=1, le=boards.MAX_DAYS)] = 3,
    start: Annotated[int, Query(ge=-28, le=56, description="Days from today")] = 0,
) -> Response:
    lab = p.ctx.lab
    version = current_version(p.ctx.session, lab)
    board = None
    if version is not None:
        board = boards.board(p.ctx.session, lab, version, _today(lab) + timedelta(days=start), days)
    return render(
        request,
        "board.html",
        viewer=p.viewer,
        lab=lab,
        current="board",
        title="Board",
        board=board,
        days=days,
        start=start,
    )


def examiner_of(p: Page) -> Examiner | None:
    examiner_id = p.viewer.principal.examiner_id
    return p.ctx.session.get(Examiner, examiner_id) if examiner_id is not None else None


# ---- backlog ------------------------------------------------------------------------------


@router.get("/labs/{lab}/backlog")
def backlog_page(
    request: Request,
    p: ReadPage,
    priority: Annotated[list[str] | None, Query(max_length=16)] = None,
    sla: Annotated[list[str] | None, Query(max_length=8)] = None,
) -> Response:
    from api.console.charts import backlog_svg
    from scheduler.planning import console as reads

    lab = p.ctx.lab
    now = utcnow()
    version = current_version(p.ctx.session, lab)
    cases = reads.backlog_cases(p.ctx.session, lab, version, now)
    chart = reads.backlog_chart(lab, cases, now)
    levels = [lv.code for lv in sorted(lab.priority_levels, key=lambda lv: lv.rank)]
    unknown = [v for v in (priority or []) if v not in levels] + [
        v for v in (sla or []) if v not in reads.SLA_STATES
    ]
    if unknown:
        raise Invalid(f"unknown filter values: {', '.join(sorted(set(unknown)))}")
    shown = [
        c for c in cases if (not priority or c.priority in priority) and (not sla or c.sla in sla)
    ]
    counts = {code: sum(1 for c in cases if c.priority == code) for code in levels}
    return render(
        request,
        "backlog.html",
        viewer=p.viewer,
        lab=lab,
        current="backlog",
        title="Backlog",
        version=version,
        cases=shown,
        total=len(cases),
        counts=counts,
        levels=levels,
        sla_states=reads.SLA_STATES,
        sla_words=reads.SLA_WORDS,
        chosen_priority=set(priority or []),
        chosen_sla=set(sla or []),
        chart=backlog_svg(chart),
        now=now,
    )


# ---- case ---------------------------------------------------------------------------------

CaseReadPage = Annotated[Page, page(*CASE_READ)]
EscalatePage = Annotated[Page, page(*ESCALATE)]
ManagePage = Annotated[Page, page(*MANAGE)]
CaseWritePage = Annotated[Page, page(*CASE_WRITE)]
RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]

REASON_WORDS = {
    "no_eligible_examiner": "no active examiner holds every skill it needs or may take its "
    "severity",
    "no_eligible_workstation": "no workstation has every capability it needs",
    "exposure_caps": "the examiners who could take it have no exposure allowance left in the "
    "horizon",
    "horizon_full": "the planning horizon is full with more urgent or older work",
    "predecessor_unscheduled": "it waits for an earlier stage that is not planned yet",
    "released_after_horizon": "its device arrives after the planning horizon",
    "not_a_candidate": "more urgent work fills the capacity, so it was not fitted this time",
    "pin_conflict": "its pin cannot be kept",
    "unplannable_record": "its record is incomplete and cannot be planned",
}


@router.get("/labs/{lab}/case")
def find_case(p: CaseReadPage, ref: Annotated[str, Query(max_length=64)] = "") -> Response:
    ref = ref.strip()
    if not ref:
        raise Invalid("enter a case reference", field="ref")
    case = casework.get_case(p.ctx.session, p.ctx.lab, ref)
    return RedirectResponse(f"/ui/labs/{p.ctx.lab.code}/cases/{case.external_ref}", 303)


def _case_values(p: Page, ref: str) -> dict[str, Any]:
    from api.routers.cases import _links

    session, lab = p.ctx.session, p.ctx.lab
    case = casework.get_case(session, lab, ref)
    version = current_version(session, lab)
    outlook = views.case_forecast(session, lab, case, version)
    devices = list(
        session.scalars(select(Device).where(Device.case_id == case.id).order_by(Device.id))
    )
    jobs = {
        j.id: j
        for j in session.scalars(
            select(Job).join(Device, Job.device_id == Device.id).where(Device.case_id == case.id)
        )
    }
    flags = list(
        session.scalars(
            select(TriageFlag).where(TriageFlag.case_id == case.id).order_by(TriageFlag.id)
        )
    )
    level = session.get(PriorityLevel, case.priority_level_id)
    more_urgent = [
        lv
        for lv in sorted(lab.priority_levels, key=lambda lv: lv.rank)
        if level is None or lv.rank < level.rank
    ]
    examiners = resources.active_examiners(session, lab)
    workstations = resources.active_workstations(session, lab)
    return {
        "case": case,
        "level": level,
        "outlook": outlook,
        "devices": devices,
        "jobs": jobs,
        "flags": flags,
        "links": _links(session, case),
        "more_urgent": more_urgent,
        "examiners": examiners,
        "workstations": workstations,
        "version": version,
        "reason_words": REASON_WORDS,
        "may_escalate": p.viewer.role in ESCALATE,
        "may_pin": p.viewer.role in MANAGE,
        "may_hold": p.viewer.role in CASE_WRITE,
    }


@router.get("/labs/{lab}/cases/{ref}")
def case_page(request: Request, p: CaseReadPage, ref: RefPath) -> Response:
    return render(
        request,
        "case.html",
        viewer=p.viewer,
        lab=p.ctx.lab,
        current="",
        title=f"Case {ref}",
        notice=request.query_params.get("done"),
        **_case_values(p, ref),
    )


def _back(p: Page, ref: str, done: str) -> Response:
    from urllib.parse import quote

    return RedirectResponse(
        f"/ui/labs/{p.ctx.lab.code}/cases/{ref}?done={quote(done)}", status_code=303
    )


@router.post("/labs/{lab}/cases/{ref}/escalate")
async def escalate(request: Request, p: EscalatePage, ref: RefPath) -> Response:
    from api.schemas.cases import EscalateIn

    fields = await auth.form_fields(request)
    body = EscalateIn.model_validate(
        {"priority": fields.get("priority", ""), "reason": fields.get("reason") or None}
    )

    def work() -> str:
        case = casework.get_case(p.ctx.session, p.ctx.lab, ref)
        get_level(p.ctx.session, p.ctx.lab, body.priority)
        casework.escalate_case(p.ctx.session, p.ctx.lab, case, body.priority, p.actor, body.reason)
        run = runs.queued_in(p.ctx.session)
        queued = f"; repair run {run.id} queued" if run is not None else ""
        return f"escalated to {body.priority}{queued}"

    return _back(p, ref, await run_in_threadpool(work))


@router.post("/labs/{lab}/jobs/{job_id}/pin")
async def pin(request: Request, p: ManagePage, job_id: Annotated[int, Path(ge=1)]) -> Response:
    import json
    from zoneinfo import ZoneInfo

    from api.schemas.cases import PinIn

    fields = await auth.form_fields(request)
    start_text = fields.get("start", "")
    try:
        local_start = datetime.fromisoformat(start_text)
    except ValueError:
        raise Invalid("give the pin's start as a date and time", field="start") from None
    if local_start.tzinfo is None:
        local_start = local_start.replace(tzinfo=ZoneInfo(p.ctx.lab.timezone))
    body = PinIn.model_validate_json(
        json.dumps(
            {
                "start": local_start.isoformat(),
                "examiner": fields.get("examiner") or None,
                "workstation": fields.get("workstation") or None,
            }
        )
    )

    def work() -> str:
        session, lab = p.ctx.session, p.ctx.lab
        job = casework.get_job(session, lab, job_id)
        examiner = get_examiner(session, lab, body.examiner) if body.examiner else None
        workstation = get_workstation(session, lab, body.workstation) if body.workstation else None
        casework.pin_job(
            session,
            job,
            actor=p.actor,
            start=body.start,
            examiner=examiner,
            workstation=workstation,
        )
        return _case_ref(p, job)

    ref = await run_in_threadpool(work)
    return _back(p, ref, f"job {job_id} pinned")


@router.post("/labs/{lab}/jobs/{job_id}/{action}")
async def job_action(
    p: CaseWritePage,
    job_id: Annotated[int, Path(ge=1)],
    action: Annotated[str, Path(pattern="^(hold|resume|unpin)$")],
) -> Response:
    if action == "unpin" and p.viewer.role not in MANAGE:
        raise Forbidden(f"the {p.viewer.role} role may not unpin a job")

    def work() -> str:
        job = casework.get_job(p.ctx.session, p.ctx.lab, job_id)
        if action == "unpin":
            casework.unpin_job(p.ctx.session, job, actor=p.actor)
        else:
            status = "on_hold" if action == "hold" else "pending"
            casework.set_job_status(p.ctx.session, job, actor=p.actor, status=status)
        return _case_ref(p, job)

    ref = await run_in_threadpool(work)
    words = {"hold": "put on hold", "resume": "taken back into planning", "unpin": "unpinned"}
    return _back(p, ref, f"job {job_id} {words[action]}")


def _case_ref(p: Page, job: Job) -> str:
    device = p.ctx.session.get(Device, job.device_id)
    assert device is not None
    case = p.ctx.session.get(Case, device.case_id)
    assert case is not None
    return case.external_ref


# ---- exposure -----------------------------------------------------------------------------


@router.get("/labs/{lab}/exposure")
def exposure_page(
    request: Request, p: ReadPage, weeks: Annotated[int, Query(ge=1, le=6)] = 2
) -> Response:
    from scheduler.planning import console as reads

    lab = p.ctx.lab
    version = current_version(p.ctx.session, lab)
    days, rows = reads.exposure_grid(p.ctx.session, lab, version, utcnow(), weeks=weeks)
    return render(
        request,
        "exposure.html",
        viewer=p.viewer,
        lab=lab,
        current="exposure",
        title="Exposure",
        version=version,
        grid_days=days,
        rows=rows,
        weeks=weeks,
        today=_today(lab),
    )


# ---- runs ---------------------------------------------------------------------------------


def _runs_values(p: Page) -> dict[str, Any]:
    session, lab = p.ctx.session, p.ctx.lab
    found = runs.list_runs(session, lab, limit=30)
    versions = list(
        session.scalars(
            select(ScheduleVersion)
            .where(ScheduleVersion.lab_id == lab.id)
            .options(defer(ScheduleVersion.diff), defer(ScheduleVersion.terms))
            .order_by(ScheduleVersion.id.desc())
            .limit(30)
        )
    )
    by_run = {v.solve_run_id: v for v in versions if v.solve_run_id is not None}
    modes = {r.id: r.mode for r in found}
    return {
        "runs": found,
        "versions": versions,
        "by_run": by_run,
        "modes": modes,
        "active": any(r.status in ("queued", "running") for r in found),
        "may_manage": p.viewer.role in MANAGE,
    }


@router.get("/labs/{lab}/runs")
def runs_page(
    request: Request,
    p: ReadPage,
    diff_from: Annotated[int | None, Query(alias="from", ge=1)] = None,
    diff_to: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> Response:
    from scheduler.planning import console as reads

    values = _runs_values(p)
    compared = None
    if diff_from is not None and diff_to is not None:
        compared = reads.diff_by_examiner(p.ctx.session, p.ctx.lab, diff_from, diff_to)
    return render(
        request,
        "runs.html",
        viewer=p.viewer,
        lab=p.ctx.lab,
        current="runs",
        title="Runs",
        compared=compared,
        diff_from=diff_from,
        diff_to=diff_to,
        notice=request.query_params.get("done"),
        **values,
    )


@router.get("/labs/{lab}/runs/live")
def runs_live(request: Request, p: ReadPage) -> Response:
    """The runs table alone, re-read by the page while a run is queued or running."""
    return render(request, "_runs.html", viewer=p.viewer, lab=p.ctx.lab, **_runs_values(p))


@router.post("/labs/{lab}/runs")
async def queue(request: Request, p: ManagePage) -> Response:
    fields = await auth.form_fields(request)
    try:
        seconds = int(fields.get("time_limit_seconds") or 20)
    except ValueError:
        raise Invalid("the time limit is a whole number of seconds") from None

    def work() -> int:
        queued = runs.queue_run(
            p.ctx.session,
            p.ctx.lab,
            actor=p.actor,
            mode="full",
            auto_publish=fields.get("auto_publish") == "on",
            time_limit_seconds=seconds,
            reason="queued from the console",
        )
        return queued.run.id

    run_id = await run_in_threadpool(work)
    return RedirectResponse(
        f"/ui/labs/{p.ctx.lab.code}/runs?done=run+{run_id}+queued", status_code=303
    )


@router.post("/labs/{lab}/versions/{version_id}/publish")
async def publish_version(p: ManagePage, version_id: Annotated[int, Path(ge=1)]) -> Response:
    from scheduler.planning.publish import publish

    def work() -> None:
        version = views.get_version(p.ctx.session, p.ctx.lab, version_id)
        publish(p.ctx.session, version, actor=p.actor, force=False)

    await run_in_threadpool(work)
    return RedirectResponse(
        f"/ui/labs/{p.ctx.lab.code}/runs?done=version+{version_id}+published", status_code=303
    )


# ---- the examiner's own view --------------------------------------------------------------

ExaminerPage = Annotated[Page, page("examiner")]


@router.get("/labs/{lab}/me")
def my_work(
    request: Request,
    p: ExaminerPage,
    days: Annotated[int, Query(ge=1, le=boards.MAX_DAYS)] = 5,
) -> Response:
    from scheduler.planning import console as reads

    examiner = examiner_of(p)
    if examiner is None or examiner.lab_id != p.ctx.lab.id:
        raise Forbidden("this examiner key names no examiner of this lab")
    lab = p.ctx.lab
    version = current_version(p.ctx.session, lab)
    board = None
    if version is not None:
        board = boards.board(
            p.ctx.session, lab, version, _today(lab), days, examiner_id=examiner.id
        )
    exposure_days, rows = reads.exposure_grid(
        p.ctx.session, lab, version, utcnow(), examiner_id=examiner.id
    )
    return render(
        request,
        "me.html",
        viewer=p.viewer,
        lab=lab,
        current="me",
        title="My work",
        examiner=examiner,
        board=board,
        days=days,
        grid_days=exposure_days,
        rows=rows,
        today=_today(lab),
        feed_url=None,
    )


@router.post("/labs/{lab}/me/calendar")
async def my_calendar(request: Request, p: ExaminerPage) -> Response:
    from scheduler.services import feeds

    examiner = examiner_of(p)
    if examiner is None or examiner.lab_id != p.ctx.lab.id:
        raise Forbidden("this examiner key names no examiner of this lab")

    def work() -> str:
        _, token = feeds.create_feed(
            p.ctx.session,
            actor=p.actor,
            lab=p.ctx.lab,
            kind="calendar",
            name="console",
            examiner=examiner,
        )
        return token

    token = await run_in_threadpool(work)
    url = str(request.url_for("feed_calendar", token=token))
    return render(
        request,
        "calendar_link.html",
        viewer=p.viewer,
        lab=p.ctx.lab,
        current="me",
        title="Calendar link",
        url=url,
    )
