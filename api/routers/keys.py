"""API keys over HTTP (admin only): create (the token is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from api.deps import REF_PATTERN, AdminCtx, Context, OperateCtx
from api.pagination import Page, PageDep, paginate
from api.problems import problems
from api.schemas.keys import KeyCreate, KeyCreated, KeyOut
from models import ApiKey, Examiner, Lab
from scheduler.errors import Forbidden, Invalid
from scheduler.services import keys
from scheduler.services.labs import get_lab
from scheduler.services.resources import get_examiner

router = APIRouter(prefix="/api-keys", tags=["api keys"])

Prefix = Annotated[str, Path(min_length=1, max_length=16, pattern=REF_PATTERN)]


def key_out(session: Session, key: ApiKey) -> KeyOut:
    lab = session.get(Lab, key.lab_id) if key.lab_id else None
    examiner = session.get(Examiner, key.examiner_id) if key.examiner_id else None
    return KeyOut(
        prefix=key.prefix,
        name=key.name,
        role=key.role,
        lab=lab.code if lab else None,
        examiner=examiner.external_ref if examiner else None,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def _check_scope(ctx: Context, lab_id: int | None) -> None:
    if not ctx.principal.all_labs and lab_id != ctx.principal.lab_id:
        raise Forbidden(f"this key manages keys of lab {ctx.principal.lab_code!r} only")


@router.post("", status_code=201, responses=problems(404, 409, 422))
def create_key(body: KeyCreate, ctx: AdminCtx) -> KeyCreated:
    """Create a key. The response holds the token; it is never shown again."""
    lab_code = body.lab
    if lab_code is None and not ctx.principal.all_labs:
        lab_code = ctx.principal.lab_code
    lab = get_lab(ctx.session, lab_code) if lab_code else None
    _check_scope(ctx, lab.id if lab else None)
    examiner = None
    if body.examiner is not None:
        if lab is None:
            raise Invalid("an examiner key needs `lab` to find its examiner", field="lab")
        examiner = get_examiner(ctx.session, lab, body.examiner)
    new = keys.create_key(
        ctx.session, actor=ctx.actor, role=body.role, name=body.name, lab=lab, examiner=examiner
    )
    out = key_out(ctx.session, new.key)
    return KeyCreated(**out.model_dump(), token=new.token)


@router.get("", responses=problems(422))
def list_keys(ctx: OperateCtx, page: PageDep) -> Page[KeyOut]:
    """Keys of the caller's scope (never their secrets). Admins and auditors."""
    listing = keys.keys_of(ctx.principal.lab_id)  # None: a key of all labs sees every key
    rows, cursors = paginate(ctx.session, listing, page)
    return Page[KeyOut](items=[key_out(ctx.session, k) for k in rows], **cursors._asdict())


@router.post("/{prefix}:revoke", responses=problems(404, 409, 422))
def revoke_key(prefix: Prefix, ctx: AdminCtx) -> KeyOut:
    """Revoke a key: this server process refuses it at once; its other processes, and other
    servers on the database, may accept it for up to `LABQ_KEY_CACHE_SECONDS` (5 s) more."""
    _check_scope(ctx, keys.get_key(ctx.session, prefix).lab_id)
    return key_out(ctx.session, keys.revoke_key(ctx.session, actor=ctx.actor, prefix=prefix))
