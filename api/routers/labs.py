"""Labs, their priority schemes and their vocabularies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.deps import (
    REF_PATTERN,
    AdminCtx,
    Context,
    LabReadCtx,
    ManageCtx,
    lab_path,
    require_all_labs,
)
from api.etag import IfMatch, IfNoneMatch, check_if_match, etag_of, not_modified, set_etag
from api.pagination import Page, PageDep, paginate
from api.problems import problems
from api.schemas.cases import Stage
from api.schemas.common import LABEL_PATTERN, Code
from api.schemas.labs import (
    LabCreate,
    LabOut,
    LabPatch,
    PriorityLevelIn,
    PriorityLevelOut,
    VocabularyIn,
    VocabularyOut,
)
from scheduler.services import labs, vocabulary

router = APIRouter(tags=["labs"])
lab_router = APIRouter(prefix="/labs/{lab}", tags=["labs"], dependencies=[Depends(lab_path)])

LevelCode = Annotated[
    str, Path(min_length=1, max_length=16, pattern=REF_PATTERN, description="e.g. P1")
]
Term = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=LABEL_PATTERN,
        description="A lower-case term, e.g. mobile.",
    ),
]
StageTerm = Annotated[Stage, Path(description="One of the stages labq plans.")]
NOT_MODIFIED: dict[int | str, dict[str, object]] = {304: {"description": "Not modified."}}


@router.post("/labs", status_code=201, responses=problems(409, 422))
def create_lab(body: LabCreate, ctx: AdminCtx, response: Response) -> LabOut:
    """Create a lab (with the default P1..P5 scheme unless told otherwise). Admin, all labs."""
    require_all_labs(ctx, "creating a lab")
    fields = body.model_dump(exclude={"vocabulary"})
    terms = body.vocabulary.model_dump() if body.vocabulary is not None else None
    lab = labs.create_lab(ctx.session, actor=ctx.actor, terms=terms, **fields)
    out = LabOut.model_validate(lab)
    set_etag(response, out)
    response.headers["Location"] = f"/labs/{lab.code}"
    return out


@router.get("/labs", responses=problems(422))
def list_labs(ctx: LabReadCtx, page: PageDep) -> Page[LabOut]:
    """The labs this key may see: all of them, or the one it is scoped to."""
    rows, cursors = paginate(ctx.session, labs.labs_visible(ctx.principal.lab_id), page)
    return Page[LabOut](items=[LabOut.model_validate(r) for r in rows], **cursors._asdict())


@lab_router.get("", responses={**problems(404), **NOT_MODIFIED})
def get_lab(ctx: LabReadCtx, response: Response, if_none_match: IfNoneMatch = None) -> LabOut:
    out = LabOut.model_validate(ctx.lab)
    tag = etag_of(out)
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})  # type: ignore[return-value]
    response.headers["ETag"] = tag
    return out


@lab_router.patch("", responses=problems(404, 412, 422))
def update_lab(
    body: LabPatch, ctx: ManageCtx, response: Response, if_match: IfMatch = None
) -> LabOut:
    """Change a lab's name, timezone or solver settings."""
    check_if_match(if_match, etag_of(LabOut.model_validate(ctx.lab)))
    lab = labs.update_lab(
        ctx.session, ctx.lab, actor=ctx.actor, **body.model_dump(exclude_unset=True)
    )
    out = LabOut.model_validate(lab)
    set_etag(response, out)
    return out


@lab_router.get("/priority-levels", tags=["priority levels"], responses=problems(404, 422))
def list_priority_levels(ctx: LabReadCtx, page: PageDep) -> Page[PriorityLevelOut]:
    rows, cursors = paginate(ctx.session, labs.levels_of(ctx.lab), page)
    return Page[PriorityLevelOut](
        items=[PriorityLevelOut.model_validate(r) for r in rows], **cursors._asdict()
    )


@lab_router.put(
    "/priority-levels/{code}", tags=["priority levels"], responses=problems(404, 409, 422)
)
def put_priority_level(code: LevelCode, body: PriorityLevelIn, ctx: ManageCtx) -> PriorityLevelOut:
    """Create or change one level of the lab's scheme (ranks are unique within a lab)."""
    level = labs.upsert_level(ctx.session, ctx.lab, actor=ctx.actor, code=code, **body.model_dump())
    return PriorityLevelOut.model_validate(level)


# --- the vocabulary ------------------------------------------------------------------------------


def _vocabulary_out(ctx: Context) -> VocabularyOut:
    return VocabularyOut(**vocabulary.vocabulary_of(ctx.session, ctx.lab).as_lists())


@lab_router.get("/vocabulary", tags=["vocabulary"], responses={**problems(404), **NOT_MODIFIED})
def get_vocabulary(
    ctx: LabReadCtx, response: Response, if_none_match: IfNoneMatch = None
) -> VocabularyOut:
    """The skills, capabilities and stages the lab has defined: the only ones its examiners,
    workstations, jobs and imports may name (others are refused with 422, every one listed)."""
    out = _vocabulary_out(ctx)
    tag = etag_of(out)
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})  # type: ignore[return-value]
    response.headers["ETag"] = tag
    return out


@lab_router.put("/vocabulary", tags=["vocabulary"], responses=problems(404, 409, 412, 422))
def put_vocabulary(
    body: VocabularyIn, ctx: ManageCtx, response: Response, if_match: IfMatch = None
) -> VocabularyOut:
    """Replace the lab's whole vocabulary.

    Removing a term still in use (by an examiner, a workstation or a job, whatever its status)
    is 409: the problem's `in_use` lists each such term with its users' references (the first
    ten and a count per kind of user), and nothing changes.
    """
    check_if_match(if_match, etag_of(_vocabulary_out(ctx)))
    vocabulary.replace_vocabulary(ctx.session, ctx.lab, actor=ctx.actor, terms=body.model_dump())
    out = _vocabulary_out(ctx)
    set_etag(response, out)
    return out


# One path per kind of term, so the schema says which terms each takes: any label for skills
# and capabilities, only the stages labq plans for stages.
_ADDED = problems(404, 422, creates=True)
_REMOVED = problems(404, 409, 422)


def _add_term(kind: str, term: str, ctx: Context, response: Response) -> VocabularyOut:
    if vocabulary.add_term(
        ctx.session, ctx.lab, actor=ctx.actor, kind=vocabulary.KIND_OF[kind], term=term
    ):
        response.status_code = 201
    out = _vocabulary_out(ctx)
    set_etag(response, out)
    return out


def _remove_term(kind: str, term: str, ctx: Context) -> Response:
    vocabulary.remove_term(
        ctx.session, ctx.lab, actor=ctx.actor, kind=vocabulary.KIND_OF[kind], term=term
    )
    return Response(status_code=204)


@lab_router.put("/vocabulary/skills/{term}", tags=["vocabulary"], responses=_ADDED)
def add_skill(term: Term, ctx: ManageCtx, response: Response) -> VocabularyOut:
    """Define one skill (201 if it is new, 200 if the lab had it already); answers the whole
    vocabulary."""
    return _add_term("skills", term, ctx, response)


@lab_router.put("/vocabulary/capabilities/{term}", tags=["vocabulary"], responses=_ADDED)
def add_capability(term: Term, ctx: ManageCtx, response: Response) -> VocabularyOut:
    """Define one capability (201 if it is new, 200 if the lab had it already); answers the whole
    vocabulary."""
    return _add_term("capabilities", term, ctx, response)


@lab_router.put("/vocabulary/stages/{term}", tags=["vocabulary"], responses=_ADDED)
def add_stage(term: StageTerm, ctx: ManageCtx, response: Response) -> VocabularyOut:
    """Define one stage (201 if it is new, 200 if the lab had it already); answers the whole
    vocabulary."""
    return _add_term("stages", term, ctx, response)


@lab_router.delete(
    "/vocabulary/skills/{term}", status_code=204, tags=["vocabulary"], responses=_REMOVED
)
def remove_skill(term: Term, ctx: ManageCtx) -> Response:
    """Remove one skill (404 if the lab has not defined it); one still in use is 409, as for a
    replaced vocabulary: `in_use` names its users."""
    return _remove_term("skills", term, ctx)


@lab_router.delete(
    "/vocabulary/capabilities/{term}", status_code=204, tags=["vocabulary"], responses=_REMOVED
)
def remove_capability(term: Term, ctx: ManageCtx) -> Response:
    """Remove one capability (404 if the lab has not defined it); one still in use is 409, as for a
    replaced vocabulary: `in_use` names its users."""
    return _remove_term("capabilities", term, ctx)


@lab_router.delete(
    "/vocabulary/stages/{term}", status_code=204, tags=["vocabulary"], responses=_REMOVED
)
def remove_stage(term: StageTerm, ctx: ManageCtx) -> Response:
    """Remove one stage (404 if the lab has not defined it); one still in use is 409, as for a
    replaced vocabulary: `in_use` names its users."""
    return _remove_term("stages", term, ctx)


__all__ = ["Code", "lab_router", "router"]
