"""Two addresses for one job: its numeric id, or its natural path of case, device and job
references. Every job route is written once, taking a ``JobAt``, and registered at both."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from api.deps import REF_PATTERN, Context
from api.pagination import id_path
from models import Job
from scheduler.services import casework

RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=REF_PATTERN)]
JobId = Annotated[int, id_path("job")]


@dataclass(frozen=True)
class JobAt:
    """Where a request finds its job: by ``job_id``, or by case, device and job references."""

    job_id: int | None = None
    case: str = ""
    device: str = ""
    job: str = ""

    def find(self, ctx: Context) -> Job:
        """The job in the key's lab; a 404 names the part of the address that is missing."""
        if self.job_id is not None:
            return casework.get_job(ctx.session, ctx.lab, self.job_id)
        return casework.job_at(ctx.session, ctx.lab, self.case, self.device, self.job)

    def id_in(self, ctx: Context) -> int:
        return self.job_id if self.job_id is not None else self.find(ctx).id


def by_id(job_id: JobId) -> JobAt:
    return JobAt(job_id=job_id)


def by_ref(ref: RefPath, device: RefPath, job: RefPath) -> JobAt:
    return JobAt(case=ref, device=device, job=job)


# (path of the job, how the path names it, suffix of the operation's name)
ADDRESSES: tuple[tuple[str, Callable[..., JobAt], str], ...] = (
    ("/jobs/{job_id}", by_id, ""),
    ("/cases/{ref}/devices/{device}/jobs/{job}", by_ref, "_by_ref"),
)


def _addressed(handler: Callable[..., Any], address: Callable[..., JobAt], name: str) -> Any:
    """``handler`` with its ``at`` parameter taken from ``address``, under its own name."""

    def route(*args: Any, **kwargs: Any) -> Any:
        return handler(*args, **kwargs)

    signature = inspect.signature(handler, eval_str=True)
    at = Annotated[JobAt, Depends(address)]
    route.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(annotation=at) if p.name == "at" else p for p in signature.parameters.values()
        ]
    )
    route.__name__ = route.__qualname__ = name
    route.__doc__ = handler.__doc__
    return route


def job_route(
    router: APIRouter,
    method: str,
    tail: str,
    handler: Callable[..., Any],
    *,
    name: str,
    segment: bool = False,
    operation_id: bool = False,
    **options: Any,
) -> None:
    r"""Register ``handler`` at the job's id and at its references, ``tail`` after each, named
    ``name`` and ``name``\_by_ref (also as operation ids when ``operation_id``).

    ``segment`` makes the last parameter stop at ':' (for the GET beside the action routes).
    """
    for base, address, suffix in ADDRESSES:
        path = base
        if segment:
            path = path.removesuffix("}") + ":segment}"
        operation = f"{name}{suffix}"
        if operation_id:
            options["operation_id"] = operation
        router.api_route(path + tail, methods=[method], **options)(
            _addressed(handler, address, operation)
        )
