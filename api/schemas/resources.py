"""Examiners (shifts, absences, exposure logs), workstations (maintenance) and licence pools."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal

from pydantic import Field, model_validator

from api.schemas.common import (
    Body,
    Capacity,
    DayMinutes,
    Flag,
    Instant,
    IntegerOnly,
    LocalTime,
    Name,
    Omittable,
    Out,
    PastDay,
    Planned,
    QueuedRun,
    Severity,
    Terms,
    WeekMinutes,
)

Weekday = Annotated[int, Field(ge=0, le=6, description="0 = Monday."), IntegerOnly]
AbsenceKind = Literal["leave", "training", "counselling", "sick", "court", "other"]
Skills = Terms
Capabilities = Terms


class ShiftIn(Body):
    weekday: Weekday
    starts: LocalTime = Field(description="Lab-local wall-clock time, e.g. 08:00.")
    ends: LocalTime

    @model_validator(mode="after")
    def _ends_after_starts(self) -> ShiftIn:
        if self.ends <= self.starts:
            raise ValueError("a shift ends after it starts")
        return self


class ShiftOut(Out):
    weekday: int
    starts: LocalTime
    ends: LocalTime


Shifts = Annotated[list[ShiftIn], Field(max_length=50)]


class ExposurePolicy(Body):
    daily_cap_minutes: DayMinutes | None = Field(
        default=240, description="Exposure minutes per lab-local day; null = no cap."
    )
    severe_daily_cap_minutes: DayMinutes | None = Field(
        default=120, description="Severity-3 minutes per day; null = no cap."
    )
    weekly_cap_minutes: WeekMinutes | None = Field(
        default=900, description="Exposure minutes per week; null = no cap."
    )
    exposure_cutoff: LocalTime | None = Field(
        default=time(16, 0), description="No exposure after this lab-local time."
    )
    max_severity: Severity = Field(default=3, description="Below 3 records an opt-out.")


class ExaminerIn(ExposurePolicy):
    """The whole examiner (PUT): omitted fields take their defaults."""

    display_name: Name | None = Field(default=None, description="Defaults to the reference.")
    active: Flag = True
    skills: Skills = []
    shifts: Shifts = Field(default=[], description="The weekly pattern (replaced as a whole).")


class ExaminerPatch(Body):
    """Only the fields given change."""

    display_name: Omittable[Name] = None
    active: Omittable[Flag] = None
    skills: Omittable[Skills] = None
    shifts: Omittable[Shifts] = None
    daily_cap_minutes: DayMinutes | None = None
    severe_daily_cap_minutes: DayMinutes | None = None
    weekly_cap_minutes: WeekMinutes | None = None
    exposure_cutoff: LocalTime | None = None
    max_severity: Omittable[Severity] = None


class ExaminerOut(Out):
    external_ref: str
    display_name: str
    active: bool
    skills: list[str]
    shifts: list[ShiftOut]
    daily_cap_minutes: int | None
    severe_daily_cap_minutes: int | None
    weekly_cap_minutes: int | None
    exposure_cutoff: LocalTime | None
    max_severity: int
    updated_at: Instant


class AbsenceIn(Body):
    kind: AbsenceKind
    starts_at: Planned
    ends_at: Planned

    @model_validator(mode="after")
    def _ends_after_starts(self) -> AbsenceIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("an absence ends after it starts")
        return self


class AbsenceOut(Out):
    id: int
    kind: str
    starts_at: Instant
    ends_at: Instant


class AbsenceAdded(AbsenceOut):
    """A new absence, with the repair run it queued when it reaches into the frozen horizon."""

    run: QueuedRun = None


class ExposureLogIn(Body):
    day: PastDay = Field(description="The lab-local day.")
    minutes: DayMinutes
    severity: Severity


class ExposureLogOut(Out):
    id: int
    day: date
    minutes: int
    severity: int


class WorkstationIn(Body):
    name: Name | None = Field(default=None, description="Defaults to the reference.")
    capacity: Capacity = 1
    active: Flag = True
    capabilities: Capabilities = []


class WorkstationPatch(Body):
    name: Omittable[Name] = None
    capacity: Omittable[Capacity] = None
    active: Omittable[Flag] = None
    capabilities: Omittable[Capabilities] = None


class WorkstationOut(Out):
    external_ref: str
    name: str
    capacity: int
    active: bool
    capabilities: list[str]
    updated_at: Instant


class MaintenanceIn(Body):
    starts_at: Planned
    ends_at: Planned

    @model_validator(mode="after")
    def _ends_after_starts(self) -> MaintenanceIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("a maintenance window ends after it starts")
        return self


class MaintenanceOut(Out):
    id: int
    starts_at: Instant
    ends_at: Instant


class LicencePoolIn(Body):
    capacity: Capacity


class LicencePoolOut(Out):
    name: str
    capacity: int
