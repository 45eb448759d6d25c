"""A built Snapshot's check (docs/architecture.md §6.3): a problem raises the SnapshotError that
`snapshot_from_json` raises for the same data, with the same field and message."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import random_snapshots

from scheduler.core.snapshot import (
    ExposurePolicy,
    Job,
    Pin,
    PreviousAssignment,
    Snapshot,
    SnapshotError,
    Weights,
    snapshot_from_json,
    snapshot_to_json,
)
from scheduler.core.snapshot_check import check_snapshot

DATA = Path(__file__).parent / "data"


def tiny() -> Snapshot:
    return snapshot_from_json(json.loads((DATA / "tiny_lab.json").read_text()))


def unchecked(snapshot: Snapshot, **changes: Any) -> Snapshot:
    """``snapshot`` with ``changes``, built (a Snapshot is checked only when asked)."""
    return dataclasses.replace(snapshot, **changes)


def outcome(build: Callable[[], object]) -> tuple[str, str] | None:
    try:
        build()
    except SnapshotError as error:
        return error.field, str(error)
    return None


def json_outcome(snapshot: Snapshot) -> tuple[str, str] | None:
    document = json.loads(json.dumps(snapshot_to_json(snapshot)))
    return outcome(lambda: snapshot_from_json(document))


def with_job(snapshot: Snapshot, index: int, **changes: Any) -> tuple[Job, ...]:
    jobs = list(snapshot.jobs)
    jobs[index] = dataclasses.replace(jobs[index], **changes)
    return tuple(jobs)


def job_of(snapshot: Snapshot, ident: str) -> int:
    return next(i for i, j in enumerate(snapshot.jobs) if j.id == ident)


# (name, the broken snapshot's changed fields, the field path the error must name)
BROKEN: list[tuple[str, Callable[[Snapshot], dict[str, Any]], str]] = [
    ("lab empty", lambda s: {"lab": " "}, "lab"),
    ("epoch naive", lambda s: {"epoch": "2026-11-30T08:00:00"}, "epoch"),
    ("horizon past the limit", lambda s: {"horizon": 10**7}, "horizon"),
    ("objective unknown", lambda s: {"objective": "profit"}, "objective"),
    ("days overlap", lambda s: {"days": ((0, 1440), (1000, 2880))}, "days[1]"),
    ("week empty", lambda s: {"weeks": ((0, 0),)}, "weeks[0]"),
    (
        "examiner id twice",
        lambda s: {"examiners": (s.examiners[0], s.examiners[0])},
        "examiners[1].id",
    ),
    (
        "availability past the horizon",
        lambda s: {
            "examiners": (
                dataclasses.replace(s.examiners[0], available=((0, s.horizon + 1),)),
                *s.examiners[1:],
            )
        },
        f"examiners[{tiny().examiners[0].id}].available[0]",
    ),
    (
        "used_by_day past the days",
        lambda s: {
            "examiners": (
                dataclasses.replace(
                    s.examiners[0],
                    exposure=dataclasses.replace(s.examiners[0].exposure, used_by_day={9: 1}),
                ),
                *s.examiners[1:],
            )
        },
        f"examiners[{tiny().examiners[0].id}].exposure.used_by_day[9]",
    ),
    (
        "weekly cap negative",
        lambda s: {
            "examiners": (
                dataclasses.replace(s.examiners[0], exposure=ExposurePolicy(weekly_cap=-1)),
                *s.examiners[1:],
            )
        },
        f"examiners[{tiny().examiners[0].id}].exposure.weekly_cap",
    ),
    (
        "workstation capacity zero",
        lambda s: {
            "workstations": (
                dataclasses.replace(s.workstations[0], capacity=0),
                *s.workstations[1:],
            )
        },
        f"workstations[{tiny().workstations[0].id}].capacity",
    ),
    (
        "exposure above attended",
        lambda s: {"jobs": with_job(s, 0, exposure=s.jobs[0].attended + 1)},
        f"jobs[{tiny().jobs[0].id}].exposure",
    ),
    (
        "pin on an unknown examiner",
        lambda s: {"jobs": with_job(s, 0, pin=Pin("nobody", None, 0))},
        f"jobs[{tiny().jobs[0].id}].pin.examiner",
    ),
    (
        "pin past the horizon",
        lambda s: {"jobs": with_job(s, 0, pin=Pin(None, None, s.horizon + 1))},
        f"jobs[{tiny().jobs[0].id}].pin.start",
    ),
    (
        "an unknown pool",
        lambda s: {"jobs": with_job(s, 0, pools=("nope",))},
        f"jobs[{tiny().jobs[0].id}].pools[0]",
    ),
    (
        "minutes on an unknown workstation",
        lambda s: {"jobs": with_job(s, 0, machine_by_workstation={"nope": 5})},
        f"jobs[{tiny().jobs[0].id}].machine_by_workstation[nope]",
    ),
    (
        "a job after itself",
        lambda s: {"jobs": with_job(s, 0, after=(s.jobs[0].id,))},
        f"jobs[{tiny().jobs[0].id}].after",
    ),
    (
        "a cycle of two",
        lambda s: {
            "jobs": with_job(
                dataclasses.replace(s, jobs=with_job(s, 1, after=(s.jobs[0].id,))),
                0,
                after=(s.jobs[1].id,),
            )
        },
        "",  # the cycle's first job, as the reader finds it
    ),
    (
        "a weight string",
        lambda s: {"jobs": with_job(s, 0, weight="3")},
        f"jobs[{tiny().jobs[0].id}].weight",
    ),
    ("job id twice", lambda s: {"jobs": (s.jobs[0], s.jobs[0])}, "jobs[1].id"),
    (
        "previous twice",
        lambda s: {
            "previous": (
                PreviousAssignment(s.jobs[0].id, None, None, 0),
                PreviousAssignment(s.jobs[0].id, None, None, 5),
            )
        },
        "previous[1].job",
    ),
    ("weight term negative", lambda s: {"weights": Weights(change=-1)}, "weights.change"),
    ("frozen_until negative", lambda s: {"frozen_until": -1}, "frozen_until"),
]


@pytest.mark.parametrize(
    ("change", "field"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_a_broken_snapshot_is_refused_by_its_check_as_the_reader_refuses_it(
    change: Callable[[Snapshot], dict[str, Any]], field: str
) -> None:
    lab = tiny()
    bad = unchecked(lab, **change(lab))
    expected = json_outcome(bad)
    assert expected is not None
    if field:
        assert expected[0] == field
    assert outcome(bad.check) == expected
    assert outcome(lambda: check_snapshot(bad)) == expected


def test_check_returns_the_snapshot_itself() -> None:
    lab = tiny()
    assert lab.check() is lab
    bad = unchecked(lab, frozen_until=-1)
    with pytest.raises(SnapshotError, match="frozen_until"):
        bad.check()


_ints = st.one_of(
    st.integers(-3, 3),
    st.integers(-(10**9) - 2, 10**9 + 2),
    st.sampled_from([10**6, 10**6 + 1, 10**9, 10**9 + 1, 604_801]),
)
_texts = st.sampled_from(["", " ", "x" * 201, "e0", "w0", "p0", "j0", "nope"])


@st.composite
def _mutated(draw: st.DrawFn) -> Snapshot:
    """A random snapshot with one field, anywhere, set to a random value of its own type."""
    lab = draw(random_snapshots())
    where = draw(st.sampled_from(["top", "examiner", "workstation", "pool", "job", "previous"]))
    if where == "top":
        name = draw(st.sampled_from(["horizon", "frozen_until", "lab", "epoch", "days"]))
        if name in ("horizon", "frozen_until"):
            return unchecked(lab, **{name: draw(_ints)})
        if name == "days":
            return unchecked(lab, days=(*lab.days, (draw(_ints), draw(_ints))))
        return unchecked(lab, **{name: draw(_texts)})
    if where == "examiner" and lab.examiners:
        i = draw(st.integers(0, len(lab.examiners) - 1))
        ex = lab.examiners[i]
        name = draw(
            st.sampled_from(
                ["daily_cap", "severe_daily_cap", "weekly_cap", "max_severity", "used_this_week"]
            )
        )
        policy = dataclasses.replace(ex.exposure, **{name: draw(_ints)})
        if draw(st.booleans()):
            policy = dataclasses.replace(policy, used_by_day={draw(_ints): draw(_ints)})
        examiners = list(lab.examiners)
        examiners[i] = dataclasses.replace(ex, exposure=policy)
        if draw(st.booleans()):
            examiners[i] = dataclasses.replace(examiners[i], skills=frozenset({draw(_texts)}))
        return unchecked(lab, examiners=tuple(examiners))
    if where == "workstation" and lab.workstations:
        i = draw(st.integers(0, len(lab.workstations) - 1))
        workstations = list(lab.workstations)
        workstations[i] = dataclasses.replace(
            workstations[i],
            capacity=draw(_ints),
            available=(*workstations[i].available, (draw(_ints), draw(_ints))),
        )
        return unchecked(lab, workstations=tuple(workstations))
    if where == "pool" and lab.pools:
        i = draw(st.integers(0, len(lab.pools) - 1))
        pools = list(lab.pools)
        pools[i] = dataclasses.replace(pools[i], capacity=draw(_ints))
        return unchecked(lab, pools=tuple(pools))
    if where == "job" and lab.jobs:
        i = draw(st.integers(0, len(lab.jobs) - 1))
        name = draw(
            st.sampled_from(
                [
                    "weight",
                    "release",
                    "due",
                    "attended",
                    "machine",
                    "exposure",
                    "severity",
                    "case",
                    "pools",
                    "examiners",
                    "after",
                    "pin",
                    "machine_by_workstation",
                ]
            )
        )
        value: Any
        if name == "case":
            value = draw(_texts)
        elif name in ("pools", "examiners", "after"):
            kind = draw(st.sampled_from([tuple, list, frozenset]))
            value = kind(draw(st.lists(_texts, max_size=3)))
        elif name == "pin":
            value = Pin(draw(st.none() | _texts), draw(st.none() | _texts), draw(_ints))
        elif name == "machine_by_workstation":
            value = draw(st.dictionaries(_texts, _ints, max_size=2))
        else:
            value = draw(_ints)
        return unchecked(lab, jobs=with_job(lab, i, **{name: value}))
    previous = PreviousAssignment(
        draw(_texts), draw(st.none() | _texts), draw(st.none() | _texts), draw(_ints)
    )
    return unchecked(lab, previous=(*lab.previous, previous))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_the_check_and_the_reader_agree_on_any_one_changed_field(bad: Snapshot) -> None:
    """Whatever one field becomes, building the Snapshot accepts it, or refuses it with the same
    field and message, exactly as `snapshot_from_json` does with its document."""
    assert outcome(bad.check) == json_outcome(bad)
