"""Cases: single upserts, the bulk import, links, triage flags and escalation.

Integrations (case-management systems) and supervisors write; auditors read. Every write that
can raise a case's level is declared with ``EscalateCtx`` (one rule for who may escalate) and
answers with the repair run it queued (``run``, and ``Location`` unless it answers 201).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from api.deps import (
    REF_PATTERN,
    CaseReadCtx,
    CaseWriteCtx,
    Context,
    EscalateCtx,
    ImportCtx,
    ManageCtx,
    commit_now,
    lab_path,
)
from api.etag import (
    IfMatch,
    IfNoneMatch,
    check_if_match,
    check_if_none_match,
    etag_of,
    not_modified,
    set_etag,
)
from api.pagination import Page, PageDep
from api.problems import problems
from api.run_links import answer_with_run
from api.schemas.cases import (
    CaseChanged,
    CaseIn,
    CaseOut,
    CasePatch,
    CaseStatus,
    CaseSummary,
    EscalateIn,
    FlagAdded,
    FlagIn,
    FlagOut,
    ImportIn,
    ImportOut,
    LinkAdded,
    LinkIn,
    LinkOut,
)
from api.schemas.common import QueryText
from models import Case
from scheduler.errors import Invalid
from scheduler.services import casework
from scheduler.services.case_import import import_cases
from scheduler.services.labs import get_level

router = APIRouter(prefix="/labs/{lab}", tags=["cases"], dependencies=[Depends(lab_path)])

RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified."}}


def _links(session: Session, case: Case) -> list[LinkOut]:
    return [
        LinkOut(case=other, reason=ln.reason, created_at=ln.created_at)
        for ln, other in casework.links_of(session, case)
    ]


def case_out(session: Session, case: Case) -> CaseOut:
    level = casework.level_of(session, case)
    return CaseOut(
        external_ref=case.external_ref,
        priority=level.code if level else "?",
        received_at=case.received_at,
        legal_deadline_at=case.legal_deadline_at,
        status=case.status,
        note=case.note,
        devices=casework.device_refs(session, case),
        flags=[FlagOut.model_validate(f) for f in casework.flags_of(session, case)],
        links=_links(session, case),
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


@router.get("/cases", responses=problems(404, 422))
def list_cases(
    ctx: CaseReadCtx,
    page: PageDep,
    status: Annotated[CaseStatus | None, Query()] = None,
    priority: Annotated[QueryText | None, Query(max_length=16)] = None,
) -> Page[CaseSummary]:
    """Cases of the lab, oldest first; filter by status or priority level."""
    rows = casework.case_summaries(
        ctx.session,
        ctx.lab,
        status=status,
        priority=priority,
        after_id=page.after_id,
        limit=page.limit + 1,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page[CaseSummary](
        items=[
            CaseSummary(
                external_ref=c.external_ref,
                priority=code,
                received_at=c.received_at,
                legal_deadline_at=c.legal_deadline_at,
                status=c.status,
            )
            for c, code in rows
        ],
        **page.cursors((rows[-1][0].id,) if rows else None, more)._asdict(),
    )


@router.post("/cases:import", name="import_cases", responses=problems(404, 409, 413, 422))
def import_cases_route(body: ImportIn, ctx: ImportCtx, response: Response) -> ImportOut:
    """Create or update many cases with their devices and jobs, keyed by external reference.

    Idempotent: the same payload twice changes nothing the second time (all ``unchanged``). One
    transaction: a bad item is reported by index and field, and nothing of the batch is stored.
    Jobs name predecessors of the same case as ``"D1/acquire"`` (or ``"acquire"`` on the same
    device).
    """
    result = import_cases(
        ctx.session,
        ctx.lab,
        body["cases"],
        actor=ctx.actor,
        reader=ctx.reader,
        lock_wait_seconds=ctx.lock_wait_seconds,
    )
    run = answer_with_run(ctx.session, ctx.lab.code, response)
    commit_now(ctx.session)  # the lock ends in the thread that took it (api/deps.py)
    return ImportOut(
        created=result.created, updated=result.updated, unchanged=result.unchanged, run=run
    )


def _changed(ctx: Context, out: CaseOut, response: Response) -> CaseChanged:
    """The changed case (its ETag already set from ``out``) with the run the change queued;
    a 201 keeps ``Location`` for nothing else."""
    located = response if response.status_code != 201 else None
    run = answer_with_run(ctx.session, ctx.lab.code, located)
    return CaseChanged(**out.model_dump(), run=run)


@router.get("/cases/{ref:segment}", responses={**problems(404, 422), **NOT_MODIFIED})
def get_case(
    ref: RefPath, ctx: CaseReadCtx, response: Response, if_none_match: IfNoneMatch = None
) -> CaseOut:
    out = case_out(ctx.session, casework.get_case(ctx.session, ctx.lab, ref))
    tag = etag_of(out)
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})  # type: ignore[return-value]
    response.headers["ETag"] = tag
    return out


@router.put("/cases/{ref:segment}", responses=problems(404, 409, 412, 422, creates=True))
def put_case(
    ref: RefPath,
    body: CaseIn,
    ctx: EscalateCtx,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> CaseChanged:
    """Create or replace a case's own fields (devices and jobs have their own routes).

    A more urgent priority than the stored one is an escalation and is recorded as one.
    """
    existing = casework.find_case(ctx.session, ctx.lab, ref)
    current = etag_of(case_out(ctx.session, existing)) if existing is not None else None
    check_if_match(if_match, current)
    check_if_none_match(if_none_match, current)
    if existing is not None:
        casework.escalate_if_more_urgent(ctx.session, ctx.lab, existing, body.priority, ctx.actor)
    case = casework.upsert_case(
        ctx.session, ctx.lab, actor=ctx.actor, external_ref=ref, **body.model_dump()
    )
    if existing is None:
        response.status_code = 201
    out = case_out(ctx.session, case)
    set_etag(response, out)
    return _changed(ctx, out, response)


@router.patch("/cases/{ref:segment}", responses=problems(404, 412, 422))
def patch_case(
    ref: RefPath, body: CasePatch, ctx: CaseWriteCtx, response: Response, if_match: IfMatch = None
) -> CaseOut:
    """Change status, note, received time or legal deadline. Raise priority with ``:escalate``."""
    case = casework.get_case(ctx.session, ctx.lab, ref)
    check_if_match(if_match, etag_of(case_out(ctx.session, case)))
    level = casework.level_of(ctx.session, case)
    fields: dict[str, Any] = {
        "priority": level.code if level else "",
        "received_at": case.received_at,
        "legal_deadline_at": case.legal_deadline_at,
        "status": case.status,
        "note": case.note,
    }
    fields.update(body.model_dump(exclude_unset=True))
    if fields["received_at"] is None:
        raise Invalid("received_at cannot be removed", field="received_at")
    case = casework.upsert_case(ctx.session, ctx.lab, actor=ctx.actor, external_ref=ref, **fields)
    out = case_out(ctx.session, case)
    set_etag(response, out)
    return out


@router.delete("/cases/{ref:segment}", status_code=204, responses=problems(404, 409, 412, 422))
def delete_case(ref: RefPath, ctx: ManageCtx, if_match: IfMatch = None) -> Response:
    """Delete a case entered in error (409 once work has started: close it instead)."""
    case = casework.get_case(ctx.session, ctx.lab, ref)
    check_if_match(if_match, etag_of(case_out(ctx.session, case)))
    casework.delete_case(ctx.session, case, actor=ctx.actor)
    return Response(status_code=204)


@router.post("/cases/{ref}:escalate", responses=problems(404, 409, 412, 422))
def escalate_case(
    ref: RefPath, body: EscalateIn, ctx: EscalateCtx, response: Response, if_match: IfMatch = None
) -> CaseChanged:
    """Raise the case's priority level (a lower or equal level is a conflict).

    Answers with the repair run it queued (``run`` and ``Location``), if the lab has a published
    schedule and the case is open.
    """
    case = casework.get_case(ctx.session, ctx.lab, ref)
    check_if_match(if_match, etag_of(case_out(ctx.session, case)))
    get_level(ctx.session, ctx.lab, body.priority)
    case = casework.escalate_case(ctx.session, ctx.lab, case, body.priority, ctx.actor, body.reason)
    out = case_out(ctx.session, case)
    set_etag(response, out)
    return _changed(ctx, out, response)


@router.get("/cases/{ref}/links", responses=problems(404, 422))
def list_links(ref: RefPath, ctx: CaseReadCtx) -> list[LinkOut]:
    return _links(ctx.session, casework.get_case(ctx.session, ctx.lab, ref))


@router.post("/cases/{ref}/links", status_code=201, responses=problems(404, 409, 422))
def link_case(ref: RefPath, body: LinkIn, ctx: EscalateCtx) -> LinkAdded:
    """Link two cases of the lab (same suspect, same report, shared hashes)."""
    case = casework.get_case(ctx.session, ctx.lab, ref)
    other = casework.get_case(ctx.session, ctx.lab, body.case)
    link = casework.link_cases(ctx.session, case, other, actor=ctx.actor, reason=body.reason)
    return LinkAdded(
        case=other.external_ref,
        reason=link.reason,
        created_at=link.created_at,
        run=answer_with_run(ctx.session, ctx.lab.code, None),
    )


@router.delete("/cases/{ref}/links/{other}", status_code=204, responses=problems(404, 422))
def unlink_case(ref: RefPath, other: RefPath, ctx: CaseWriteCtx) -> Response:
    case = casework.get_case(ctx.session, ctx.lab, ref)
    linked = casework.get_case(ctx.session, ctx.lab, other)
    casework.unlink_cases(ctx.session, case, linked, actor=ctx.actor)
    return Response(status_code=204)


@router.get("/cases/{ref}/flags", responses=problems(404, 422))
def list_flags(ref: RefPath, ctx: CaseReadCtx) -> list[FlagOut]:
    case = casework.get_case(ctx.session, ctx.lab, ref)
    return [FlagOut.model_validate(f) for f in casework.flags_of(ctx.session, case)]


@router.post("/cases/{ref}/flags", status_code=201, responses=problems(404, 422))
def add_flag(ref: RefPath, body: FlagIn, ctx: EscalateCtx) -> FlagAdded:
    """Record a triage signal (hash-set hit, classifier, linked report, manual)."""
    case = casework.get_case(ctx.session, ctx.lab, ref)
    flag = casework.add_flag(ctx.session, case, actor=ctx.actor, kind=body.kind, note=body.note)
    run = answer_with_run(ctx.session, ctx.lab.code, None)
    return FlagAdded(**FlagOut.model_validate(flag).model_dump(), run=run)
