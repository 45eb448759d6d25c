"""Health (public) and Prometheus metrics (the metrics token, or an admin or auditor key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.deps import ScrapeCtx, get_engine
from api.problems import problems
from scheduler.db import answers
from scheduler.errors import DomainError

router = APIRouter(tags=["operations"])


class Unavailable(DomainError):
    status = 503
    title = "Service unavailable"
    type = "https://labq.dev/problems/unavailable"


class Health(BaseModel):
    status: str
    database: str


@router.get("/health", responses=problems(503, auth=False))
def health(request: Request) -> Health:
    """Liveness and database reachability. Needs no key."""
    if not answers(get_engine(request)):
        raise Unavailable("the database does not answer")
    return Health(status="ok", database="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format."},
        **problems(),
    },
)
def metrics(ctx: ScrapeCtx, request: Request) -> Response:
    """Prometheus text format: this process's requests by route, and labq's state from the
    database (solve runs and the queue, publications, repair latency, SLA breaches and open cases
    by priority, exposure against caps per examiner reference, worker heartbeats).

    Scrapers send the configured metrics token (`LABQ_METRICS_TOKEN`) as `Authorization: Bearer`;
    an admin or auditor key works too."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
