"""Shared mapping of a shop-scheduling instance onto the snapshot contract.

Each operation becomes a machine-only job (attended 0) restricted to its eligible machines through
``machine_by_workstation``; operations of one shop job chain through ``after``. Machines are
workstations of capacity 1 available over the whole horizon, which is a safe upper bound on the
makespan: every operation run back to back on its slowest machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.core.snapshot import Job, Snapshot, Workstation

BENCH_EPOCH = "2026-01-05T00:00:00+00:00"

# One shop job: its operations in order, each a list of (machine index from 0, processing time).
Operations = Sequence[Sequence[tuple[int, int]]]


def shop_snapshot(name: str, machines: int, shop_jobs: Sequence[Operations]) -> Snapshot:
    """The makespan snapshot of a (flexible) job shop with ``machines`` machines."""
    horizon = max(1, sum(max(t for _, t in op) for ops in shop_jobs for op in ops))
    whole = ((0, horizon),)
    workstations = tuple(Workstation(f"m{m + 1}", frozenset(), 1, whole) for m in range(machines))
    jobs: list[Job] = []
    for j, ops in enumerate(shop_jobs, start=1):
        previous: tuple[str, ...] = ()
        for k, op in enumerate(ops, start=1):
            times: dict[str, int] = {}
            for machine, time in op:
                if not 0 <= machine < machines:
                    raise ValueError(f"job {j} operation {k}: machine {machine + 1} out of range")
                key = f"m{machine + 1}"
                times[key] = min(time, times.get(key, time))
            job_id = f"j{j}-{k}"
            jobs.append(
                Job(
                    id=job_id,
                    case=f"j{j}",
                    weight=1,
                    release=0,
                    due=None,
                    attended=0,
                    machine=max(times.values()),
                    machine_by_workstation=times,
                    after=previous,
                )
            )
            previous = (job_id,)
    return Snapshot(
        lab=name,
        epoch=BENCH_EPOCH,
        horizon=horizon,
        objective="makespan",
        days=whole,
        weeks=whole,
        examiners=(),
        workstations=workstations,
        pools=(),
        jobs=tuple(jobs),
    ).check()  # docs/architecture.md §6.3
