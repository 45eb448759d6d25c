"""Hypothesis strategies for small, feasible-ish labs, shared by the property tests.

`random_snapshots()` draws 1-4 examiners, 0-3 workstations, 0-2 licence pools and 1-12 jobs over
1-3 days, with predecessor chains (including done predecessors absent from the snapshot), exposure
work, allow-lists, per-workstation machine times, back-to-back (touching) availability windows and,
sometimes, pins and a published schedule.
Every pin is an individually valid placement (skills, capabilities, windows, release, horizon) on
its own examiner and workstation, so a plan that keeps all pins always exists; requirements are
drawn from what some examiner or workstation offers, so most jobs can be scheduled.
"""

from __future__ import annotations

from hypothesis import strategies as st

from scheduler.core.snapshot import (
    Examiner,
    ExposurePolicy,
    Interval,
    Job,
    Pin,
    Pool,
    PreviousAssignment,
    Snapshot,
    Weights,
    Workstation,
)

DAY = 1440
SKILLS = ("mobile", "computer", "cloud")
CAPABILITIES = ("ufed", "graykey", "axiom")
WEIGHTS = (10, 30, 100, 300, 1000)
EPOCH = "2026-11-30T00:00:00+00:00"


def _subset(draw: st.DrawFn, items: tuple[str, ...] | list[str], *, min_size: int = 0) -> list[str]:
    if not items:
        return []
    return draw(
        st.lists(st.sampled_from(items), min_size=min_size, max_size=len(items), unique=True)
    )


@st.composite
def _examiner(draw: st.DrawFn, ident: str, n_days: int) -> Examiner:
    available: list[Interval] = []
    windows: list[Interval] = []
    for day in range(n_days):
        if draw(st.integers(0, 5)) == 0:
            continue  # a day off
        start = day * DAY + draw(st.sampled_from((0, 60, 120)))
        length = draw(st.sampled_from((240, 480, 510)))
        cut_off = start + min(length, 420)  # exposure ends before the shift does
        if length > 240 and draw(st.integers(0, 3)) == 0:
            # Two back-to-back windows (a mid-day booking boundary): touching, never merged.
            middle = start + 240
            available += [(start, middle), (middle, start + length)]
            windows += [(start, middle), (middle, cut_off)]
        else:
            available.append((start, start + length))
            windows.append((start, cut_off))
    used_by_day = draw(st.dictionaries(st.integers(0, n_days - 1), st.integers(0, 120), max_size=2))
    caps = st.none() | st.sampled_from((0, 60, 120, 240))
    exposure = ExposurePolicy(
        daily_cap=draw(caps),
        severe_daily_cap=draw(caps),
        weekly_cap=draw(st.none() | st.sampled_from((120, 480, 900))),
        windows=tuple(windows) if draw(st.booleans()) else (),
        max_severity=draw(st.integers(0, 3)),
        used_by_day=used_by_day,
        used_this_week=draw(st.sampled_from((0, 0, 60, 300))),
    )
    skills = frozenset(_subset(draw, SKILLS, min_size=1))
    return Examiner(ident, skills, tuple(available), exposure)


@st.composite
def _workstation(draw: st.DrawFn, ident: str, horizon: int) -> Workstation:
    if draw(st.booleans()):
        available: tuple[Interval, ...] = ((0, horizon),)
    else:  # a maintenance window somewhere in the first day
        down = draw(st.integers(0, DAY - 60))
        available = ((0, down), (down + 60, horizon))
    return Workstation(
        ident,
        frozenset(_subset(draw, CAPABILITIES, min_size=1)),
        draw(st.integers(1, 2)),
        available,
    )


@st.composite
def random_snapshots(draw: st.DrawFn) -> Snapshot:
    """A small random lab (see the module docstring); ids are e0.., w0.., p0.., j0.."""
    n_days = draw(st.integers(1, 3))
    horizon = n_days * DAY
    days = tuple((d * DAY, (d + 1) * DAY) for d in range(n_days))
    examiners = [draw(_examiner(f"e{i}", n_days)) for i in range(draw(st.integers(1, 4)))]
    workstations = [draw(_workstation(f"w{i}", horizon)) for i in range(draw(st.integers(0, 3)))]
    pools = [Pool(f"p{i}", draw(st.integers(1, 2))) for i in range(draw(st.integers(0, 2)))]

    jobs: list[Job] = []
    pins_left_examiners = [e for e in examiners if e.available]
    pins_left_ws = list(workstations)
    for i in range(draw(st.integers(1, 12))):
        ident = f"j{i}"
        case = f"c{draw(st.integers(0, 3))}"
        weight = draw(st.sampled_from(WEIGHTS))
        due = draw(st.none() | st.integers(-DAY, horizon + DAY))
        if draw(st.integers(0, 4)) == 0 and pins_left_examiners:
            jobs.append(
                draw(_pinned_job(ident, case, weight, due, pins_left_examiners, pins_left_ws))
            )
            continue
        jobs.append(
            draw(_free_job(ident, case, weight, due, horizon, examiners, workstations, pools, jobs))
        )

    previous: list[PreviousAssignment] = []
    frozen_until = draw(st.sampled_from((0, 0, DAY // 2, DAY)))
    for job in jobs:
        if job.pin is not None:
            if draw(st.booleans()):
                previous.append(
                    PreviousAssignment(job.id, job.pin.examiner, job.pin.workstation, job.pin.start)
                )
        elif draw(st.integers(0, 3)) == 0:
            # Published but not frozen: the solver may move it. One that starts inside the
            # frozen window has given up its frozen room (to urgent work, by the loader).
            given_up = frozen_until > 0 and draw(st.integers(0, 3)) == 0
            start = draw(st.integers(0 if given_up else frozen_until, horizon))
            examiner = draw(st.sampled_from(examiners)).id if job.needs_examiner else None
            ws = (
                draw(st.sampled_from(workstations)).id
                if job.needs_workstation and workstations
                else None
            )
            changes = draw(st.sampled_from((1, 1, 10)))  # the next working days count more
            previous.append(
                PreviousAssignment(job.id, examiner, ws, start, changes, frozen=not given_up)
            )
    if draw(st.booleans()):
        previous.append(PreviousAssignment("gone", examiners[0].id, None, 0))

    return Snapshot(
        lab=draw(st.sampled_from(("north", "south"))),
        epoch=EPOCH,
        horizon=horizon,
        objective=draw(st.sampled_from(("weighted_tardiness", "weighted_tardiness", "makespan"))),
        days=days,
        weeks=((0, horizon),),
        examiners=tuple(examiners),
        workstations=tuple(workstations),
        pools=tuple(pools),
        jobs=tuple(jobs),
        previous=tuple(previous),
        frozen_until=frozen_until,
        weights=Weights(change=draw(st.sampled_from((0, 50)))),
    )


@st.composite
def _free_job(
    draw: st.DrawFn,
    ident: str,
    case: str,
    weight: int,
    due: int | None,
    horizon: int,
    examiners: list[Examiner],
    workstations: list[Workstation],
    pools: list[Pool],
    earlier: list[Job],
) -> Job:
    attended = draw(st.sampled_from((0, 15, 30, 60, 120)))
    skills: list[str] = []
    allow: tuple[str, ...] | None = None
    exposure = severity = 0
    if attended:
        chosen = draw(st.sampled_from(examiners))
        skills = _subset(draw, sorted(chosen.skills))
        if draw(st.integers(0, 3)) == 0:
            others = _subset(draw, [e.id for e in examiners if e.id != chosen.id])
            allow = (chosen.id, *others)
        if draw(st.integers(0, 2)) == 0:
            exposure = draw(st.integers(1, attended))
            severity = draw(st.integers(0, 3))
    machine = 0
    capabilities: list[str] = []
    by_ws: dict[str, int] | None = None
    with_machine: bool = draw(st.booleans())
    if workstations and with_machine:
        chosen_ws = draw(st.sampled_from(workstations))
        machine = draw(st.sampled_from((30, 120, 300, 600)))
        capabilities = _subset(draw, sorted(chosen_ws.capabilities))
        if draw(st.integers(0, 2)) == 0:
            listed = {chosen_ws.id, *_subset(draw, [w.id for w in workstations])}
            by_ws = {ws: draw(st.sampled_from((30, 120, 300, 600))) for ws in sorted(listed)}
    if attended == 0 and machine == 0:
        attended = 30  # every job has some work
        skills = []
    after = _subset(draw, [j.id for j in earlier[-4:]])[:2]
    if draw(st.integers(0, 5)) == 0:
        after.append("done0")  # a predecessor already done: absent from the snapshot
    release = draw(st.sampled_from((0, 0, 0, 0, 0, 60, 60, DAY, DAY, horizon + 60)))
    return Job(
        id=ident,
        case=case,
        weight=weight,
        release=release,
        due=due,
        attended=attended,
        machine=machine,
        machine_by_workstation=by_ws,
        skills=frozenset(skills),
        capabilities=frozenset(capabilities),
        pools=tuple(_subset(draw, [p.id for p in pools])),
        examiners=allow,
        exposure=exposure,
        severity=severity,
        after=tuple(after),
    )


@st.composite
def _pinned_job(
    draw: st.DrawFn,
    ident: str,
    case: str,
    weight: int,
    due: int | None,
    examiners_left: list[Examiner],
    workstations_left: list[Workstation],
) -> Job:
    """A job pinned where it fits on its own; it takes its examiner and workstation out of
    ``examiners_left`` / ``workstations_left`` so pins never compete."""
    examiner = draw(st.sampled_from(examiners_left))
    examiners_left.remove(examiner)
    window_start, window_end = draw(st.sampled_from(examiner.available))
    start = window_start
    attended = draw(st.integers(15, min(120, window_end - window_start)))
    machine = 0
    capabilities: frozenset[str] = frozenset()
    ws_id: str | None = None
    by_ws: dict[str, int] | None = None
    fitting = [w for w in workstations_left if any(a <= start < b for a, b in w.available)]
    with_machine: bool = draw(st.booleans())
    if fitting and with_machine:
        ws = draw(st.sampled_from(fitting))
        workstations_left.remove(ws)
        ws_end = next(b for a, b in ws.available if a <= start < b)
        machine = draw(st.integers(1, min(600, ws_end - start)))
        capabilities = frozenset(_subset(draw, sorted(ws.capabilities)))
        ws_id = ws.id
        if draw(st.booleans()):
            by_ws = {ws.id: machine}
    return Job(
        id=ident,
        case=case,
        weight=weight,
        release=draw(st.integers(0, start)),
        due=due,
        attended=attended,
        machine=machine,
        machine_by_workstation=by_ws,
        skills=frozenset(_subset(draw, sorted(examiner.skills))),
        capabilities=capabilities,
        examiners=(examiner.id,) if draw(st.booleans()) else None,
        pin=Pin(examiner.id, ws_id, start),
    )
