"""Builders for tiny labs written out by hand in tests (a day is 1440 minutes from the epoch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import strategies as st

from scheduler.core.snapshot import (
    Examiner,
    ExposurePolicy,
    Job,
    Pin,
    Pool,
    PreviousAssignment,
    Snapshot,
    Weights,
    Workstation,
)

DAY = 1440
WEEK = 7 * DAY


def examiner(
    id: str,
    skills: Sequence[str] = ("mobile",),
    available: Sequence[tuple[int, int]] = ((0, 480),),
    *,
    daily_cap: int | None = None,
    severe_daily_cap: int | None = None,
    weekly_cap: int | None = None,
    windows: Sequence[tuple[int, int]] | None = None,
    max_severity: int = 3,
    used_by_day: Mapping[int, int] | None = None,
    used_this_week: int = 0,
) -> Examiner:
    return Examiner(
        id=id,
        skills=frozenset(skills),
        available=tuple(available),
        exposure=ExposurePolicy(
            daily_cap=daily_cap,
            severe_daily_cap=severe_daily_cap,
            weekly_cap=weekly_cap,
            windows=tuple(windows if windows is not None else available),
            max_severity=max_severity,
            used_by_day=dict(used_by_day or {}),
            used_this_week=used_this_week,
        ),
    )


def workstation(
    id: str,
    capabilities: Sequence[str] = ("ufed",),
    capacity: int = 1,
    available: Sequence[tuple[int, int]] | None = None,
    horizon: int = 2 * WEEK,
) -> Workstation:
    return Workstation(
        id=id,
        capabilities=frozenset(capabilities),
        capacity=capacity,
        available=tuple(available if available is not None else ((0, horizon),)),
    )


def job(
    id: str,
    *,
    case: str = "c1",
    weight: int = 1,
    release: int = 0,
    due: int | None = None,
    attended: int = 60,
    machine: int = 0,
    machine_by_workstation: Mapping[str, int] | None = None,
    skills: Sequence[str] = ("mobile",),
    capabilities: Sequence[str] = (),
    pools: Sequence[str] = (),
    examiners: Sequence[str] | None = None,
    exposure: int = 0,
    severity: int = 0,
    after: Sequence[str] = (),
    pin: tuple[str | None, str | None, int] | None = None,
) -> Job:
    return Job(
        id=id,
        case=case,
        weight=weight,
        release=release,
        due=due,
        attended=attended,
        machine=machine,
        machine_by_workstation=dict(machine_by_workstation) if machine_by_workstation else None,
        skills=frozenset(skills),
        capabilities=frozenset(capabilities),
        pools=tuple(pools),
        examiners=tuple(examiners) if examiners is not None else None,
        exposure=exposure,
        severity=severity,
        after=tuple(after),
        pin=Pin(*pin) if pin is not None else None,
    )


def lab(
    examiners: Sequence[Examiner],
    jobs: Sequence[Job],
    workstations: Sequence[Workstation] = (),
    pools: Sequence[Pool] = (),
    *,
    horizon: int = 2 * WEEK,
    objective: str = "weighted_tardiness",
    previous: Sequence[PreviousAssignment] = (),
    frozen_until: int = 0,
    weights: Weights | None = None,
) -> Snapshot:
    days = tuple((d, min(d + DAY, horizon)) for d in range(0, horizon, DAY))
    weeks = tuple((w, min(w + WEEK, horizon)) for w in range(0, horizon, WEEK))
    return Snapshot(
        lab="tiny",
        epoch="2026-11-30T08:00:00+00:00",
        horizon=horizon,
        objective=objective,
        days=days,
        weeks=weeks,
        examiners=tuple(examiners),
        workstations=tuple(workstations),
        pools=tuple(pools),
        jobs=tuple(jobs),
        previous=tuple(previous),
        frozen_until=frozen_until,
        weights=weights or Weights(),
    )


def shifts(days: int, start: int = 0, end: int = 480) -> tuple[tuple[int, int], ...]:
    """Daily shifts ``[start, end)`` minutes into each of the first ``days`` days."""
    return tuple((d * DAY + start, d * DAY + end) for d in range(days))


def coupled_chains() -> Snapshot:
    """Two process-then-review chains, one server, one examiner on shifts [0, 480): the second
    process job cannot start until the next day (the examiner must start it), so its review
    falls out of the horizon. Only a bound that sees the server queue, the start windows and
    the chains at once charges that."""
    return lab(
        [examiner("e1", ["mobile", "review"], shifts(2))],
        [
            job("pa", attended=15, machine=600, capabilities=["processing"], due=0),
            job("ra", skills=["review"], attended=120, exposure=60, due=0, after=["pa"]),
            job("pb", attended=15, machine=600, capabilities=["processing"], due=0),
            job("rb", skills=["review"], attended=120, exposure=60, due=0, after=["pb"]),
        ],
        [workstation("w1", ["processing"], horizon=2 * DAY)],
        horizon=2 * DAY,
    )


@st.composite
def small_labs(draw: st.DrawFn) -> Snapshot:
    """Random tiny labs with chains, workstations, pools, exposure and the odd pin."""
    days = draw(st.integers(1, 3))
    skills = ["mobile", "review"]
    examiners = [
        examiner(
            f"e{i}",
            draw(st.lists(st.sampled_from(skills), min_size=1, max_size=2, unique=True)),
            shifts(days, draw(st.integers(0, 120)), draw(st.integers(240, 600))),
            daily_cap=draw(st.sampled_from([None, 60, 120])),
            severe_daily_cap=draw(st.sampled_from([None, 30, 60])),
            weekly_cap=draw(st.sampled_from([None, 100, 200])),
            max_severity=draw(st.integers(0, 3)),
            used_by_day={0: draw(st.integers(0, 60))},
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    stations = [
        workstation(f"w{i}", ["ufed"], draw(st.integers(1, 2)), horizon=days * DAY)
        for i in range(draw(st.integers(0, 2)))
    ]
    jobs = []
    n = draw(st.integers(1, 10))
    for i in range(n):
        machine = draw(st.sampled_from([0, 0, 30, 300]))
        exposure = draw(st.sampled_from([0, 0, 30, 60]))
        after = draw(st.lists(st.sampled_from([f"j{k}" for k in range(i)] or ["gone"]), max_size=2))
        attended = (
            draw(st.sampled_from([0, 15, 60, 200]))
            if machine
            else draw(st.sampled_from([15, 60, 200]))
        )
        exposure = min(exposure, attended)  # exposure is part of attended time (the contract)
        jobs.append(
            job(
                f"j{i}",
                case=f"c{i % 3}",
                weight=draw(st.integers(1, 100)),
                release=draw(st.integers(0, 300)),
                due=draw(st.one_of(st.none(), st.integers(0, days * DAY))),
                attended=attended,
                machine=machine,
                skills=[draw(st.sampled_from(skills))],
                capabilities=["ufed"] if machine else [],
                pools=["lic"] if machine and draw(st.booleans()) else [],
                exposure=exposure,
                severity=draw(st.integers(1, 3)) if exposure else 0,
                after=after,
                pin=("e0", None, draw(st.integers(0, 200)))
                if not machine and draw(st.integers(0, 9)) == 0
                else None,
            )
        )
    return lab(
        examiners,
        jobs,
        stations,
        [Pool("lic", 1)],
        horizon=days * DAY,
    )
