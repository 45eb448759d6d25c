"""Synthetic forensic labs for demos, tests and benchmarks.

A generated lab looks like the units of docs/architecture.md §1: a backlog that exceeds the two-week
horizon, a few urgent cases arriving during it, locked phones queueing for a GrayKey, overnight
processing sharing a small pool of licences, and review work limited by exposure caps. Everything
follows the defaults of docs/architecture.md §2.6 (priority scheme, caps, 16:00 cut-off, hourly
breaks). The same size and seed always give the same snapshot, so benchmark figures can be
reproduced.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime

from scheduler.core.snapshot import (
    Examiner,
    ExposurePolicy,
    Interval,
    Job,
    Pin,
    Pool,
    Snapshot,
    Weights,
    Workstation,
)

DAY = 1440
WEEK = 7 * DAY
HOUR = 60
SHIFT = 510  # 08:00-16:30
CUTOFF = 480  # exposure stops at 16:00 (IWF)
HORIZON_DAYS = 14  # ten working days
DEFAULT_EPOCH = "2026-11-30T08:00:00+00:00"  # a Monday, 08:00

DAILY_CAP = 240
SEVERE_DAILY_CAP = 120
WEEKLY_CAP = 900
BREAK_PER_EXPOSURE_HOUR = 10
MAX_SESSION = 240  # a review sitting, breaks included
MAX_SESSION_NET = 200  # review minutes in a full sitting; breaks bring it to <= 240


@dataclass(frozen=True)
class Priority:
    """One level of the default scheme (docs/architecture.md §2.5) and how its cases arrive."""

    code: str
    weight: int
    sla_minutes: int  # target start after receipt
    share: float  # fraction of cases
    max_age_days: int  # oldest backlog case of this level
    arriving: float  # fraction arriving during the horizon rather than waiting in the backlog


PRIORITIES = (
    Priority("P1", 1000, 24 * HOUR, 0.05, 1, 0.6),
    Priority("P2", 300, 72 * HOUR, 0.12, 5, 0.4),
    Priority("P3", 100, 14 * DAY, 0.18, 30, 0.2),
    Priority("P4", 30, 60 * DAY, 0.45, 365, 0.1),
    Priority("P5", 10, 180 * DAY, 0.20, 540, 0.05),
)


@dataclass(frozen=True)
class LabSize:
    examiners: int
    jobs: tuple[int, int]  # the generator stops adding cases once a target in this range is met
    ufeds: int
    imagers: int
    graykeys: int
    servers: int
    axiom_licences: int


SIZES = {
    "small": LabSize(8, (320, 460), ufeds=2, imagers=2, graykeys=1, servers=2, axiom_licences=2),
    "medium": LabSize(
        30, (1600, 2350), ufeds=6, imagers=5, graykeys=2, servers=6, axiom_licences=5
    ),
    "large": LabSize(
        60, (5050, 5500), ufeds=12, imagers=10, graykeys=3, servers=12, axiom_licences=10
    ),
}

# Examiner roles, cycled so that every skill a job can require is held by someone.
ROLES = {
    "mobile": frozenset({"mobile", "unlock", "review", "report"}),
    "computer": frozenset({"computer", "review", "report"}),
    "analyst": frozenset({"review", "report"}),
    "technician": frozenset({"mobile", "computer", "unlock"}),
}
ROLE_CYCLE = ("mobile", "computer", "analyst", "technician", "analyst", "mobile", "computer",
              "analyst", "mobile", "analyst")  # fmt: skip

DEVICE_KINDS = ("phone", "computer", "storage", "cloud_return")
DEVICE_MIX = (0.45, 0.25, 0.20, 0.10)
LOCKED_PHONE_SHARE = 0.56
REVIEW_SHARE = {"phone": 1.0, "computer": 1.5, "storage": 1.0, "cloud_return": 0.7}


def generate_lab(
    size: str,
    seed: int,
    epoch: str = DEFAULT_EPOCH,
    *,
    scale: int = 1,
    horizon_days: int = HORIZON_DAYS,
) -> Snapshot:
    """A realistic synthetic lab of ``size`` ("small", "medium" or "large"), fixed by ``seed``.

    ``epoch`` must be a Monday 08:00 (the start of the first shift): days, weeks, shifts and the
    16:00 exposure cut-off are laid out from it. ``scale`` multiplies the examiners, the backlog
    and every kind of workstation and licence; ``horizon_days`` (whole weeks) stretches the
    planning horizon, with shifts on every working day of it (the benchmarks of the snapshot
    contract's limits use both; the defaults give the labs every other benchmark knows).
    """
    if size not in SIZES:
        raise ValueError(f"unknown lab size {size!r}; expected one of {', '.join(SIZES)}")
    if scale < 1:
        raise ValueError(f"scale {scale} must be at least 1")
    if horizon_days < 7 or horizon_days % 7:
        raise ValueError(f"horizon_days {horizon_days} must be a whole number of weeks")
    start = datetime.fromisoformat(epoch)
    if start.weekday() != 0 or (start.hour, start.minute, start.second) != (8, 0, 0):
        raise ValueError(f"epoch {epoch!r} must be a Monday 08:00")
    base = SIZES[size]
    lab_size = replace(
        base,
        examiners=base.examiners * scale,
        jobs=(base.jobs[0] * scale, base.jobs[1] * scale),
        ufeds=base.ufeds * scale,
        imagers=base.imagers * scale,
        graykeys=base.graykeys * scale,
        servers=base.servers * scale,
        axiom_licences=base.axiom_licences * scale,
    )
    name = f"synthetic-{size}-{seed}"
    if scale != 1:
        name += f"-x{scale}"
    if horizon_days != HORIZON_DAYS:
        name += f"-{horizon_days}d"
    return _LabBuilder(lab_size, random.Random(f"labq:{size}:{seed}"), horizon_days).build(
        name, epoch
    )


def _round_up(minutes: float, step: int = 15) -> int:
    return max(step, -(-int(minutes) // step) * step)


class _LabBuilder:
    """Draws one lab; kept as a class so the random stream is consumed in one fixed order."""

    def __init__(self, size: LabSize, rng: random.Random, horizon_days: int) -> None:
        self.size = size
        self.rng = rng
        self.jobs: list[Job] = []
        self.horizon_days = horizon_days
        self.horizon = horizon_days * DAY
        self.busy_pins: set[str] = set()  # workstations already holding an in-progress job
        self.reviewers: list[str] = []  # examiners who may take any review session
        self.station_ids: dict[str, list[str]] = {}
        self.speed: dict[str, float] = {}  # machine-time factor per acquisition/processing box

    def build(self, lab: str, epoch: str) -> Snapshot:
        examiners = self._examiners()
        workstations = self._workstations()
        pools = (Pool("axiom", self.size.axiom_licences),)
        low, high = self.size.jobs
        target = self.rng.randint(low, high)
        case_number = 0
        while len(self.jobs) < target:
            case_number += 1
            self._case(f"c{case_number:04d}", urgent=case_number == 1)
        return Snapshot(
            lab=lab,
            epoch=epoch,
            horizon=self.horizon,
            objective="weighted_tardiness",
            days=tuple((d * DAY, (d + 1) * DAY) for d in range(self.horizon_days)),
            weeks=tuple((w * WEEK, (w + 1) * WEEK) for w in range(self.horizon_days // 7)),
            examiners=examiners,
            workstations=workstations,
            pools=pools,
            jobs=tuple(self.jobs),
            previous=(),
            frozen_until=DAY + SHIFT,  # end of the next working day
            weights=Weights(),
        ).check()  # docs/architecture.md §6.3

    def _working_days(self) -> list[int]:
        return [d for d in range(self.horizon_days) if d % 7 < 5]

    # -- people ---------------------------------------------------------------------------------

    def _examiners(self) -> tuple[Examiner, ...]:
        rng = self.rng
        count = self.size.examiners
        roles = [ROLE_CYCLE[i % len(ROLE_CYCLE)] for i in range(count)]
        ids = [f"e{i + 1:02d}" for i in range(count)]
        review_ids = [e for e, r in zip(ids, roles, strict=True) if "review" in ROLES[r]]
        special = rng.sample(review_ids, 2 * max(1, count // 15))
        newcomers = set(special[: len(special) // 2])  # reduced caps while they settle in
        opted_out = set(special[len(special) // 2 :])  # no severity-3 material
        self.reviewers = [e for e in review_ids if e not in newcomers and e not in opted_out]
        logged = set(rng.sample(self.reviewers, min(2, len(self.reviewers))))
        examiners = []
        for examiner_id, role in zip(ids, roles, strict=True):
            skills = set(ROLES[role])
            if rng.random() < 0.2:
                skills.add(rng.choice(["mobile", "computer", "report"]))
            available = self._availability()
            windows = tuple(
                (s, min(e, s - s % DAY + CUTOFF)) for s, e in available if s % DAY < CUTOFF
            )
            # Exposure already logged today; the week starts today, so nothing before it counts.
            used_by_day = {0: rng.randrange(30, 91, 15)} if examiner_id in logged else {}
            if examiner_id in newcomers:
                policy = ExposurePolicy(120, 60, 450, windows, 3, used_by_day)
            else:
                policy = ExposurePolicy(
                    DAILY_CAP,
                    SEVERE_DAILY_CAP,
                    WEEKLY_CAP,
                    windows,
                    2 if examiner_id in opted_out else 3,
                    used_by_day,
                )
            examiners.append(Examiner(examiner_id, frozenset(skills), available, policy))
        return tuple(examiners)

    def _availability(self) -> tuple[Interval, ...]:
        """Mon-Fri 08:00-16:30 less leave, training and counselling appointments."""
        rng = self.rng
        days = self._working_days()
        off: set[int] = set()
        if rng.random() < 0.25:  # annual leave: a run of working days
            first = rng.randrange(len(days))
            off.update(days[first : first + rng.randint(1, 5)])
        if rng.random() < 0.1:  # a training day
            off.add(rng.choice(days))
        holes: dict[int, Interval] = {}
        if rng.random() < 0.5:  # counselling: one hour, not on a leave day
            day = rng.choice(days)
            at = rng.randrange(60, 421, 30)
            holes[day] = (at, at + HOUR)
        available: list[Interval] = []
        for day in days:
            if day in off:
                continue
            base = day * DAY
            if day in holes:
                hole_start, hole_end = holes[day]
                available += [(base, base + hole_start), (base + hole_end, base + SHIFT)]
            else:
                available.append((base, base + SHIFT))
        return tuple(available)

    # -- machines -------------------------------------------------------------------------------

    def _workstations(self) -> tuple[Workstation, ...]:
        rng = self.rng
        size = self.size
        whole: tuple[Interval, ...] = ((0, self.horizon),)
        stations = []
        for i in range(size.ufeds):
            stations.append(Workstation(f"ufed{i + 1}", frozenset({"ufed"}), 1, whole))
        for i in range(size.imagers):
            caps = frozenset({"imager", "write_blocker"})
            stations.append(Workstation(f"imager{i + 1}", caps, 1, whole))
        for i in range(size.graykeys):
            stations.append(Workstation(f"graykey{i + 1}", frozenset({"graykey"}), 2, whole))
        for i in range(size.servers):
            stations.append(Workstation(f"server{i + 1}", frozenset({"processing"}), 1, whole))
        # One acquisition box is down for a maintenance day.
        index = rng.randrange(size.ufeds + size.imagers)
        day = rng.choice(self._working_days())
        down = stations[index]
        stations[index] = Workstation(
            down.id,
            down.capabilities,
            down.capacity,
            ((0, day * DAY), ((day + 1) * DAY, self.horizon)) if day else ((DAY, self.horizon),),
        )
        self.station_ids = {
            kind: [s.id for s in stations if s.id.startswith(kind)]
            for kind in ("ufed", "imager", "graykey", "server")
        }
        self.speed = {
            # Every other box is a newer, faster model.
            s.id: (0.7 if i % 2 else 1.0)
            for group in ("ufed", "imager", "server")
            for i, s in enumerate(w for w in stations if w.id.startswith(group))
        }
        return tuple(stations)

    def _by_speed(self, prefix: str, minutes: int) -> dict[str, int]:
        return {
            ws: max(5, round(minutes * factor / 5) * 5)
            for ws, factor in self.speed.items()
            if ws.startswith(prefix)
        }

    # -- casework -------------------------------------------------------------------------------

    def _case(self, case: str, urgent: bool) -> None:
        rng = self.rng
        level = (
            PRIORITIES[0] if urgent else rng.choices(PRIORITIES, [p.share for p in PRIORITIES])[0]
        )
        if rng.random() < level.arriving:
            day = rng.choice(self._working_days()[:-2])
            received = day * DAY + rng.randrange(0, SHIFT - 60, 15)
        else:
            received = -rng.randrange(0, level.max_age_days * DAY + 1, 15)
        due_base = received + level.sla_minutes
        if rng.random() < 0.05:  # a court date can come before the SLA
            due_base = min(due_base, rng.randrange(3 * DAY, 30 * DAY, DAY))
        release = max(0, received)
        age_days = -received // DAY if received < 0 else 0
        severe_case = level.code in ("P1", "P2") or rng.random() < 0.2
        # Some long-waiting cases are worked on by an assigned examiner and a deputy.
        allowed = None
        if received < -30 * DAY and rng.random() < 0.1 and len(self.reviewers) >= 2:
            allowed = tuple(sorted(rng.sample(self.reviewers, 2)))

        devices = rng.choices([1, 2, 3, 4], [0.35, 0.35, 0.2, 0.1])[0]
        kinds = rng.choices(DEVICE_KINDS, DEVICE_MIX, k=devices)
        review_hours = min(90.0, max(12.0, rng.gauss(45, 12)))
        shares = [REVIEW_SHARE[k] * rng.uniform(0.6, 1.4) for k in kinds]
        review_ids: list[str] = []
        review_finish = 0
        for number, (kind, share) in enumerate(zip(kinds, shares, strict=True), start=1):
            device = f"{case}-d{number}"
            arrival = release + (rng.randrange(DAY, 3 * DAY, 15) if rng.random() < 0.1 else 0)
            net_review = round(review_hours * HOUR * share / sum(shares))
            ids, finish = self._device(
                case, device, kind, level, arrival, due_base, age_days, net_review, severe_case,
                allowed,
            )  # fmt: skip
            review_ids += ids
            review_finish = max(review_finish, finish)
        report = _round_up(rng.randint(120, 360))
        self.jobs.append(
            Job(
                id=f"{case}-report",
                case=case,
                weight=level.weight,
                release=release,
                due=max(0, due_base + review_finish + report),
                attended=report,
                machine=0,
                skills=frozenset({"report"}),
                after=tuple(review_ids),
            )
        )

    def _device(
        self,
        case: str,
        device: str,
        kind: str,
        level: Priority,
        release: int,
        due_base: int,
        age_days: int,
        net_review: int,
        severe_case: bool,
        allowed: tuple[str, ...] | None,
    ) -> tuple[list[str], int]:
        """Add the device's chain; return its review job ids and the nominal chain length."""
        rng = self.rng
        skill = "mobile" if kind == "phone" else "computer"
        # Long-waiting cases may already be acquired (and processed): those jobs are done and
        # absent from the snapshot, but their ids stay in `after`, as the contract allows.
        acquired = age_days > 30 and rng.random() < 0.35
        processed = acquired and rng.random() < 0.5
        offset = 0  # nominal finish of the chain so far, for due times
        previous: tuple[str, ...] = ()

        def add(job: Job) -> None:
            nonlocal offset, previous
            offset += job.min_duration
            self.jobs.append(job)
            previous = (job.id,)

        if kind == "phone" and rng.random() < LOCKED_PHONE_SHARE:
            unlock_id = f"{device}-unlock"
            if acquired:
                previous = (unlock_id,)
            else:
                in_progress = self._free("graykey") if release == 0 and rng.random() < 0.1 else None
                machine = _round_up(rng.randint(2 * HOUR, 24 * HOUR))
                add(
                    Job(
                        id=unlock_id,
                        case=case,
                        weight=level.weight,
                        release=release,
                        due=max(0, due_base + offset + machine),
                        attended=0 if in_progress else 15,
                        machine=machine,
                        skills=frozenset() if in_progress else frozenset({"unlock"}),
                        capabilities=frozenset({"graykey"}),
                        pin=Pin(None, in_progress, 0) if in_progress else None,
                    )
                )
        acquire_id = f"{device}-acquire"
        if acquired:
            previous = (acquire_id,)
        else:
            base = {
                "phone": (90, 360),
                "computer": (180, 600),
                "storage": (60, 480),
                "cloud_return": (30, 180),
            }[kind]
            by_station = self._by_speed("ufed" if kind == "phone" else "imager", rng.randint(*base))
            attended = 30 if kind != "computer" else 45
            length = max(attended, min(by_station.values()))
            add(
                Job(
                    id=acquire_id,
                    case=case,
                    weight=level.weight,
                    release=release,
                    due=max(0, due_base + offset + length),
                    attended=attended,
                    machine=max(by_station.values()),
                    machine_by_workstation=by_station,
                    skills=frozenset({skill}),
                    capabilities=frozenset({"ufed"} if kind == "phone" else {"imager"}),
                    after=previous,
                )
            )
        process_id = f"{device}-process"
        if processed:
            previous = (process_id,)
        else:
            in_progress = (
                self._free("server") if acquired and release == 0 and rng.random() < 0.15 else None
            )
            base_minutes = rng.randint(6 * HOUR, 12 * HOUR)
            if in_progress:  # already running: only the remaining machine time is left
                remaining = _round_up(base_minutes * rng.uniform(0.1, 0.9), 5)
                job = Job(
                    id=process_id,
                    case=case,
                    weight=level.weight,
                    release=release,
                    due=max(0, due_base + offset + remaining),
                    attended=0,
                    machine=remaining,
                    capabilities=frozenset({"processing"}),
                    pools=("axiom",),
                    after=previous,
                    pin=Pin(None, in_progress, 0),
                )
            else:
                by_station = self._by_speed("server", base_minutes)
                job = Job(
                    id=process_id,
                    case=case,
                    weight=level.weight,
                    release=release,
                    due=max(0, due_base + offset + min(by_station.values())),
                    attended=15,
                    machine=max(by_station.values()),
                    machine_by_workstation=by_station,
                    skills=frozenset({skill}),
                    capabilities=frozenset({"processing"}),
                    pools=("axiom",),
                    after=previous,
                )
            add(job)
        review_ids = []
        chain = previous
        finish = offset
        remaining_net = max(30, net_review)
        session = 0
        while remaining_net > 0:
            session += 1
            net = min(MAX_SESSION_NET, remaining_net)
            remaining_net -= net
            severity = self._severity(severe_case)
            exposure = 0
            if severity:
                exposure = round(net * rng.uniform(0.3, 0.9) / 5) * 5
                if severity == 3:
                    exposure = min(exposure, SEVERE_DAILY_CAP)
                exposure = max(5, exposure)
            attended = _round_up(net + BREAK_PER_EXPOSURE_HOUR * (exposure // HOUR))
            assert attended <= MAX_SESSION
            job_id = f"{device}-review{session}"
            review_ids.append(job_id)
            finish = max(finish, offset + attended)
            self.jobs.append(
                Job(
                    id=job_id,
                    case=case,
                    weight=level.weight,
                    release=release,
                    due=max(0, due_base + offset + attended),
                    attended=attended,
                    machine=0,
                    skills=frozenset({"review"}),
                    examiners=allowed,
                    exposure=exposure,
                    severity=severity,
                    after=chain,
                )
            )
        return review_ids, finish

    def _severity(self, severe_case: bool) -> int:
        weights = [0.25, 0.3, 0.25, 0.2] if severe_case else [0.4, 0.35, 0.2, 0.05]
        return self.rng.choices([0, 1, 2, 3], weights)[0]

    def _free(self, kind: str) -> str | None:
        """A workstation of ``kind`` with no in-progress job yet, so pins never collide.

        In-progress processing leaves at least one licence of the pool free.
        """
        busy = [ws for ws in self.busy_pins if ws.startswith(kind)]
        if kind == "server" and len(busy) >= self.size.axiom_licences - 1:
            return None
        for station in self.station_ids[kind]:
            if station not in self.busy_pins:
                self.busy_pins.add(station)
                return station
        return None
