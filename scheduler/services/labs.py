"""Labs and their priority schemes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import Lab, PriorityLevel
from models.lab import DEFAULT_MAX_TIME_LIMIT_SECONDS, DEFAULT_PRIORITY_SCHEME
from scheduler.errors import Busy, Invalid, NotFound
from scheduler.services import audit, vocabulary
from scheduler.services.integrity import flush
from scheduler.services.listing import Listing, by_id

LAB_SETTINGS = (
    "name",
    "timezone",
    "planning_horizon_days",
    "slot_minutes",
    "frozen_working_days",
    "start_grace_minutes",
    "solve_time_limit_seconds",
    "max_time_limit_seconds",
    "weight_tardiness",
    "weight_change",
    "weight_balance",
    "weight_continuity",
)


@cache
def timezone_names() -> tuple[str, ...]:
    """The IANA names this installation knows, in order: the lab timezones it accepts (the
    API's schema lists them)."""
    return tuple(sorted(available_timezones()))


def check_timezone(name: str) -> str:
    if not isinstance(name, str):  # a null from a caller that skipped the API's schema
        raise Invalid("timezone is required: an IANA timezone name", field="timezone")
    if name not in timezone_names():
        raise Invalid(f"timezone {name!r} is not an IANA timezone name", field="timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"timezone {name!r} is not an IANA timezone name", field="timezone") from None
    return name


def _check_time_limits(lab: Lab) -> None:
    """The lab's default time limit must be one its cap allows."""
    default, cap = lab.solve_time_limit_seconds, lab.max_time_limit_seconds
    if default is not None and cap is not None and default > cap:
        raise Invalid(
            f"solve_time_limit_seconds ({default}) is above the lab's cap "
            f"max_time_limit_seconds ({cap})",
            field="solve_time_limit_seconds",
        )


def get_lab(session: Session, code: str) -> Lab:
    lab = session.scalar(select(Lab).where(Lab.code == code))
    if lab is None:
        raise NotFound(f"lab {code!r} does not exist")
    return lab


def lock_lab(session: Session, code: str, *, wait_seconds: float | None = None) -> Lab:
    """The lab, read afresh and held for writing until the transaction ends.

    Every change to a lab's data takes this lock before it reads what it changes (the API on
    each unsafe method, the import, publishing): writers of one lab run one after another, so an
    ETag compared under the lock is still current when the change is written, a create-only PUT
    creates once, a PATCH's read-modify-write and a replaced collection (skills, shifts) are one
    writer's, and identical imports find each other's rows instead of colliding on them.

    PostgreSQL: ``FOR NO KEY UPDATE`` on the lab row. It excludes the other writers but not
    inserts of rows that refer to the lab (their foreign key takes only KEY SHARE), so it never
    deadlocks against them; waiting longer than ``wait_seconds`` is ``Busy`` (a waiter holds a
    server thread). SQLite: every transaction already holds the database's write lock from its
    first statement (``BEGIN IMMEDIATE``, scheduler/db.py), so the plain read is enough.
    """
    stmt = select(Lab).where(Lab.code == code).execution_options(populate_existing=True)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        stmt = stmt.with_for_update(key_share=True)
    if postgres and wait_seconds is not None:
        timeout = {"timeout": f"{max(1, round(wait_seconds * 1000))}ms"}
        session.execute(text("SELECT set_config('lock_timeout', :timeout, true)"), timeout)
        try:
            lab = session.scalar(stmt)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                raise Busy(
                    f"another change to lab {code!r} held it for over {wait_seconds:g} s; "
                    "retry shortly"
                ) from None
            raise
        session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
    else:
        lab = session.scalar(stmt)
    if lab is None:
        raise NotFound(f"lab {code!r} does not exist")
    return lab


def find_lab(session: Session, code: str) -> Lab | None:
    return session.scalar(select(Lab).where(Lab.code == code))


def labs_visible(lab_id: int | None) -> Listing:
    """Every lab in id order, or only ``lab_id`` when given (a key scoped to one lab)."""
    stmt = select(Lab)
    if lab_id is not None:
        stmt = stmt.where(Lab.id == lab_id)
    return by_id(stmt)


def codes_of(session: Session, lab_ids: Iterable[int]) -> dict[int, str]:
    """The codes of the labs ``lab_ids``, by id."""
    return dict(session.execute(select(Lab.id, Lab.code).where(Lab.id.in_(set(lab_ids)))).all())


def levels_of(lab: Lab) -> Listing:
    """The lab's priority levels, in id order."""
    return by_id(select(PriorityLevel).where(PriorityLevel.lab_id == lab.id))


def level_codes(session: Session, lab: Lab) -> dict[int, str]:
    """The codes of the lab's priority levels, by id."""
    return dict(
        session.execute(
            select(PriorityLevel.id, PriorityLevel.code).where(PriorityLevel.lab_id == lab.id)
        ).all()
    )


def create_lab(
    session: Session,
    *,
    actor: str,
    code: str,
    name: str,
    timezone: str,
    default_scheme: bool = True,
    terms: Mapping[str, Iterable[str]] | None = None,
    **lab_settings: Any,
) -> Lab:
    """Create a lab, by default with the default priority scheme, and with its vocabulary:
    ``terms`` (``{"skills": [...], "capabilities": [...], "stages": [...]}``) or, if None, the
    default one (models/lab.py ``DEFAULT_VOCABULARY``)."""
    unknown = set(lab_settings) - set(LAB_SETTINGS)
    if unknown:
        raise Invalid(f"unknown lab settings: {', '.join(sorted(unknown))}")
    lab_terms = vocabulary.terms_for_new_lab(terms)
    lab_settings.setdefault("max_time_limit_seconds", DEFAULT_MAX_TIME_LIMIT_SECONDS)
    lab = Lab(code=code, name=name, timezone=check_timezone(timezone), **lab_settings)
    _check_time_limits(lab)
    if default_scheme:
        for rank, (level, title, weight, hours, auto_publish) in enumerate(
            DEFAULT_PRIORITY_SCHEME, start=1
        ):
            lab.priority_levels.append(
                PriorityLevel(
                    code=level,
                    name=title,
                    rank=rank,
                    weight=weight,
                    target_start_hours=hours,
                    auto_publish_repair=auto_publish,
                )
            )
    session.add(lab)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="lab.create",
        entity_type="lab",
        entity_id=lab.id,
        lab_id=lab.id,
        after=audit.state_of(lab),
    )
    vocabulary.define_new_lab(session, lab, lab_terms, actor=actor)
    return lab


def update_lab(session: Session, lab: Lab, *, actor: str, **changes: Any) -> Lab:
    unknown = set(changes) - set(LAB_SETTINGS)
    if unknown:
        raise Invalid(f"unknown lab settings: {', '.join(sorted(unknown))}")
    before = audit.state_of(lab)
    if "timezone" in changes:
        check_timezone(changes["timezone"])
    for key, value in changes.items():
        setattr(lab, key, value)
    _check_time_limits(lab)
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="lab.update",
        entity_type="lab",
        entity_id=lab.id,
        lab_id=lab.id,
        before=before,
        after=audit.state_of(lab),
    )
    return lab


def get_level(session: Session, lab: Lab, code: str) -> PriorityLevel:
    level = session.scalar(
        select(PriorityLevel).where(PriorityLevel.lab_id == lab.id, PriorityLevel.code == code)
    )
    if level is None:
        raise NotFound(f"priority level {code!r} does not exist in lab {lab.code!r}")
    return level


def upsert_level(
    session: Session,
    lab: Lab,
    *,
    actor: str,
    code: str,
    name: str,
    rank: int,
    weight: int,
    target_start_hours: int,
    auto_publish_repair: bool = False,
) -> PriorityLevel:
    level = session.scalar(
        select(PriorityLevel).where(PriorityLevel.lab_id == lab.id, PriorityLevel.code == code)
    )
    before = audit.state_of(level) if level is not None else None
    if level is None:
        level = PriorityLevel(lab_id=lab.id, code=code)
        session.add(level)
    level.name, level.rank, level.weight = name, rank, weight
    level.target_start_hours, level.auto_publish_repair = target_start_hours, auto_publish_repair
    flush(session)
    audit.record(
        session,
        actor=actor,
        action="priority_level.upsert",
        entity_type="priority_level",
        entity_id=level.id,
        lab_id=lab.id,
        before=before,
        after=audit.state_of(level),
    )
    return level
