"""The synthetic lab generator: deterministic, sized as promised, and a well-formed lab."""

from __future__ import annotations

from collections import Counter

import pytest

from scheduler.core.dispatch import POLICIES, dispatch
from scheduler.core.snapshot import Snapshot, snapshot_from_json, snapshot_to_json
from scheduler.core.verify import verify
from scheduler.generate import DEFAULT_EPOCH, SIZES, generate_lab

WEIGHTS = {1000, 300, 100, 30, 10}


@pytest.fixture(scope="module")
def small() -> Snapshot:
    return generate_lab("small", 1)


@pytest.fixture(scope="module")
def medium() -> Snapshot:
    return generate_lab("medium", 1)


def test_same_seed_same_lab() -> None:
    assert generate_lab("small", 7) == generate_lab("small", 7)


def test_different_seeds_differ() -> None:
    assert generate_lab("small", 1).jobs != generate_lab("small", 2).jobs


@pytest.mark.parametrize(
    ("size", "examiners", "low", "high"),
    [("small", 8, 300, 500), ("medium", 30, 1500, 2500), ("large", 60, 5000, 6000)],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sizes_in_range(size: str, examiners: int, low: int, high: int, seed: int) -> None:
    lab = generate_lab(size, seed)
    assert len(lab.examiners) == examiners
    assert low <= len(lab.jobs) <= high
    assert lab.lab == f"synthetic-{size}-{seed}"


def test_unknown_size_and_bad_epoch_are_refused() -> None:
    with pytest.raises(ValueError, match="size"):
        generate_lab("huge", 1)
    with pytest.raises(ValueError, match="Monday"):
        generate_lab("small", 1, epoch="2026-12-01T08:00:00+00:00")


def test_calendar_is_two_weeks_of_weekday_shifts(small: Snapshot) -> None:
    assert small.epoch == DEFAULT_EPOCH
    assert small.horizon == 14 * 1440
    assert small.days == tuple((d * 1440, (d + 1) * 1440) for d in range(14))
    assert small.weeks == ((0, 10080), (10080, 20160))
    for examiner in small.examiners:
        for start, end in examiner.available:
            day = start // 1440
            assert day % 7 < 5, "nobody works weekends"
            assert start % 1440 >= 0 and end - day * 1440 <= 510, "inside 08:00-16:30"
        for start, end in examiner.exposure.windows:
            assert end - start // 1440 * 1440 <= 480, "exposure stops at 16:00"


def test_exposure_policies(medium: Snapshot) -> None:
    policies = [e.exposure for e in medium.examiners]
    assert all(p.daily_cap is not None and p.daily_cap <= 240 for p in policies)
    assert any(
        p.daily_cap == 240 and p.severe_daily_cap == 120 and p.weekly_cap == 900 for p in policies
    )
    assert any(p.daily_cap is not None and p.daily_cap < 240 for p in policies), "a newcomer"
    assert any(p.max_severity == 2 for p in policies), "an opt-out of severity 3"
    assert any(p.used_by_day for p in policies)
    assert any(len(e.available) < 10 for e in medium.examiners), "leave or counselling holes"


def test_jobs_are_well_formed(medium: Snapshot) -> None:
    ids = {j.id for j in medium.jobs}
    assert len(ids) == len(medium.jobs)
    stations = {w.id: w for w in medium.workstations}
    pools = {p.id for p in medium.pools}
    for job in medium.jobs:
        assert job.weight in WEIGHTS
        assert 0 <= job.release < medium.horizon
        assert job.due is not None and job.due >= 0
        assert set(job.pools) <= pools
        for ws in job.machine_by_workstation or {}:
            assert job.capabilities <= stations[ws].capabilities
        for predecessor in job.after:
            # Present, or an earlier stage of the same device that is already done.
            assert predecessor in ids or predecessor.startswith(job.case + "-")
        if job.exposure:
            assert job.severity in (1, 2, 3) and job.attended <= 240
        if job.severity == 3:
            assert job.exposure <= 120


def test_every_job_has_someone_and_something_to_run_it(medium: Snapshot) -> None:
    for job in medium.jobs:
        if job.needs_examiner:
            able = [
                e
                for e in medium.examiners
                if job.skills <= e.skills
                and (job.examiners is None or e.id in job.examiners)
                and e.exposure.max_severity >= job.severity
                and (job.severity < 3 or (e.exposure.severe_daily_cap or 0) >= job.exposure)
            ]
            assert able, job.id
        if job.needs_workstation:
            names = job.machine_by_workstation or {
                w.id for w in medium.workstations if job.capabilities <= w.capabilities
            }
            assert names, job.id


def test_pins_do_not_collide(medium: Snapshot) -> None:
    pinned = [j for j in medium.jobs if j.pin is not None]
    assert pinned, "in-progress processing or unlocks"
    stations = Counter(j.pin.workstation for j in pinned if j.pin is not None)
    capacity = {w.id: w.capacity for w in medium.workstations}
    assert all(count <= capacity[ws] for ws, count in stations.items() if ws is not None)
    axiom = next(p for p in medium.pools if p.id == "axiom")
    assert sum("axiom" in j.pools for j in pinned) < axiom.capacity
    assert all(j.pin.start == 0 and j.attended == 0 for j in pinned if j.pin is not None)


def test_lab_shape_matches_the_design() -> None:
    lab = generate_lab("large", 1)
    phones = {j.id.rsplit("-", 1)[0] for j in lab.jobs if "ufed" in j.capabilities}
    unlocks = {j.id.rsplit("-", 1)[0] for j in lab.jobs if j.id.endswith("-unlock")}
    assert 0.4 < len(unlocks & phones) / len(phones) < 0.7, "about 56 % of phones locked"
    assert {w.capacity for w in lab.workstations if "graykey" in w.capabilities} == {2}
    process = [j for j in lab.jobs if j.id.endswith("-process") and j.pin is None]
    assert all(j.attended == 15 and 6 * 60 * 0.7 - 5 <= j.machine <= 12 * 60 for j in process)
    reviews = Counter(j.case for j in lab.jobs if "-review" in j.id)
    minutes = Counter[str]()
    for job in lab.jobs:
        if "-review" in job.id:
            minutes[job.case] += job.attended
    mean_hours = sum(minutes.values()) / len(minutes) / 60
    assert 35 < mean_hours < 60, "about 45 h of review per case"
    assert all(count >= 1 for count in reviews.values())
    reports = [j for j in lab.jobs if j.id.endswith("-report")]
    assert len(reports) == len({j.case for j in lab.jobs})
    assert Counter(j.weight for j in reports).keys() == WEIGHTS
    assert any(j.due == 0 for j in lab.jobs), "long-waiting backlog is already overdue"


@pytest.mark.parametrize(("size", "seed"), [("small", s) for s in range(1, 6)] + [("medium", 2)])
def test_round_trips_through_the_contract(size: str, seed: int) -> None:
    lab = generate_lab(size, seed)
    assert snapshot_from_json(snapshot_to_json(lab)) == lab


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("size", ["small", "medium"])
def test_dispatch_plans_pass_the_verifier(size: str, policy: str) -> None:
    lab = generate_lab(size, 1)
    plan = dispatch(lab, policy)
    assert verify(lab, plan) == []
    assert len(plan.assignments) + len(plan.unscheduled) == len(lab.jobs)
    weights = {j.id: j.weight for j in lab.jobs}
    assert any(weights[a.job] == 1000 for a in plan.assignments), "urgent work gets done"


def test_sizes_table_is_ordered() -> None:
    assert [SIZES[s].examiners for s in ("small", "medium", "large")] == [8, 30, 60]
