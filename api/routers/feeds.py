"""Subscription links: an examiner's calendar feed and the lab's board, opened without a key.

A calendar app or a browser cannot send ``X-API-Key``, so the URL carries a feed token
(scheduler/services/feeds.py). Supervisors create board links and calendar feeds; an examiner key
may create and revoke its own examiner's calendar feeds. The ``/feeds/{token}/...`` routes are
read-only, answer 404 for any token that is unknown, revoked or of another kind, and count such
misses against the client's failed-authentication allowance (api/throttle.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.deps import (
    REF_PATTERN,
    Context,
    ManageCtx,
    SessionDep,
    allow,
    client_address,
    failure_throttle,
    lab_path,
    require_examiner_self,
)
from api.pagination import Page, PageDep, paginate
from api.problems import problems
from api.routers.schedules import calendar_response
from api.schemas.feeds import FeedCreate, FeedCreated, FeedOut
from models import Examiner, FeedToken, Lab
from scheduler.errors import NotFound
from scheduler.planning import views
from scheduler.planning.gantt import board_page
from scheduler.services import feeds
from scheduler.services.resources import get_examiner

router = APIRouter(prefix="/labs/{lab}", dependencies=[Depends(lab_path)], tags=["feeds"])
public = APIRouter(prefix="/feeds", tags=["feeds"])

SelfManageCtx = Annotated[Context, Depends(allow("admin", "supervisor", "examiner"))]
FeedReadCtx = Annotated[Context, Depends(allow("admin", "supervisor", "auditor"))]
RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]
PrefixPath = Annotated[str, Path(min_length=1, max_length=16, pattern=REF_PATTERN)]
TokenPath = Annotated[
    str, Path(min_length=1, max_length=128, description="The feed token from the link.")
]


def feed_out(session: Session, feed: FeedToken) -> FeedOut:
    examiner = session.get(Examiner, feed.examiner_id) if feed.examiner_id else None
    return FeedOut(
        prefix=feed.prefix,
        kind=feed.kind,
        name=feed.name,
        examiner=examiner.external_ref if examiner else None,
        created_by=feed.created_by,
        created_at=feed.created_at,
        last_used_at=feed.last_used_at,
        revoked_at=feed.revoked_at,
    )


def _created(request: Request, ctx: Context, feed: FeedToken, token: str) -> FeedCreated:
    route = "feed_calendar" if feed.kind == "calendar" else "feed_board"
    url = str(request.url_for(route, token=token))
    return FeedCreated(**feed_out(ctx.session, feed).model_dump(), url=url)


@router.post("/examiners/{ref}/calendar-feeds", status_code=201, responses=problems(404, 409, 422))
def create_calendar_feed(
    ref: RefPath, body: FeedCreate, request: Request, ctx: SelfManageCtx
) -> FeedCreated:
    """A calendar subscription URL for one examiner's published schedule (shown once)."""
    examiner = get_examiner(ctx.session, ctx.lab, ref)
    require_examiner_self(ctx, examiner)
    feed, token = feeds.create_feed(
        ctx.session,
        actor=ctx.actor,
        lab=ctx.lab,
        kind="calendar",
        name=body.name,
        examiner=examiner,
    )
    return _created(request, ctx, feed, token)


@router.post("/board-links", status_code=201, responses=problems(409, 422))
def create_board_link(body: FeedCreate, request: Request, ctx: ManageCtx) -> FeedCreated:
    """A browser link to the lab's published Gantt page (shown once)."""
    feed, token = feeds.create_feed(
        ctx.session, actor=ctx.actor, lab=ctx.lab, kind="board", name=body.name
    )
    return _created(request, ctx, feed, token)


@router.get("/feeds", responses=problems(422))
def list_feeds(ctx: FeedReadCtx, page: PageDep) -> Page[FeedOut]:
    """The lab's feed tokens, live and revoked (never their secrets)."""
    rows, cursors = paginate(ctx.session, feeds.feeds_of(ctx.lab), page)
    return Page(items=[feed_out(ctx.session, f) for f in rows], **cursors._asdict())


@router.delete("/feeds/{prefix}", status_code=204, responses=problems(404, 409))
def revoke_feed(prefix: PrefixPath, ctx: SelfManageCtx) -> Response:
    """Revoke a feed token: its URL stops working at once. An examiner revokes only its own."""
    feed = feeds.get_feed(ctx.session, ctx.lab, prefix)
    if ctx.principal.role == "examiner":
        examiner = ctx.session.get(Examiner, feed.examiner_id) if feed.examiner_id else None
        if examiner is None:
            raise NotFound(f"feed {prefix!r} does not exist in lab {ctx.lab.code!r}")
        require_examiner_self(ctx, examiner)
    feeds.revoke_feed(ctx.session, actor=ctx.actor, feed=feed)
    return Response(status_code=204)


async def _feed(
    request: Request, session: Session, background: BackgroundTasks, token: str, kind: str
) -> tuple[FeedToken, Lab]:
    throttle = failure_throttle(request)
    client = client_address(request)
    throttle.check(client)
    feed = await run_in_threadpool(feeds.verify_feed, session, token, kind)
    if feed is None:
        throttle.failed(client)
        raise NotFound("no such feed: the link is wrong or was revoked")
    lab = session.get(Lab, feed.lab_id)
    assert lab is not None  # the token's lab cascades its deletion
    background.add_task(feeds.touch, request.app.state.engine, feed.id)
    return feed, lab


@public.get(
    "/{token}/schedule.ics",
    name="feed_calendar",
    responses={
        **problems(404, 429),
        200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"},
    },
)
async def feed_calendar(
    token: TokenPath, request: Request, session: SessionDep, background: BackgroundTasks
) -> Response:
    """An examiner's published schedule for a calendar app; the token is the credential."""
    feed, lab = await _feed(request, session, background, token, "calendar")
    examiner = session.get(Examiner, feed.examiner_id)
    if examiner is None:  # pragma: no cover - the examiner's deletion cascades to the token
        raise NotFound("no such feed: the link is wrong or was revoked")
    return await run_in_threadpool(calendar_response, session, lab, examiner)


@public.get(
    "/{token}/board",
    name="feed_board",
    responses={
        **problems(404, 429),
        200: {"content": {"text/html": {}}, "description": "HTML"},
    },
)
async def feed_board(
    token: TokenPath, request: Request, session: SessionDep, background: BackgroundTasks
) -> HTMLResponse:
    """The lab's published Gantt page in a browser; the token is the credential."""
    _, lab = await _feed(request, session, background, token, "board")

    def render() -> str:
        return board_page(session, lab, views.current_or_404(session, lab))

    return HTMLResponse(await run_in_threadpool(render))
