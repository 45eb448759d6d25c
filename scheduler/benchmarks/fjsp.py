"""Reader for Brandimarte-style flexible job shop files (``.fjs``).

First line: jobs, machines, average machines per operation. Then one line per job: the number of
operations and, for each, the number of eligible machines followed by machine/time pairs, machines
numbered from 1.
"""

from __future__ import annotations

from pathlib import Path

from scheduler.benchmarks.shop import shop_snapshot
from scheduler.core.snapshot import Snapshot


def read_fjs(path: str | Path) -> Snapshot:
    """The makespan snapshot of the ``.fjs`` file at ``path``; ValueError if it is malformed."""
    path = Path(path)
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not lines or len(lines[0]) < 2:
        raise ValueError(f"{path}: header must give the number of jobs and machines")
    try:
        job_count, machines = int(lines[0][0]), int(lines[0][1])
        if len(lines) - 1 < job_count:
            raise ValueError(f"expected {job_count} job lines, found {len(lines) - 1}")
        shop_jobs = []
        for number, tokens in enumerate(lines[1 : job_count + 1], start=1):
            values = [int(t) for t in tokens]
            ops: list[list[tuple[int, int]]] = []
            at = 1
            for _ in range(values[0]):
                eligible = values[at]
                pairs = values[at + 1 : at + 1 + 2 * eligible]
                if eligible < 1 or len(pairs) != 2 * eligible:
                    raise ValueError(f"job {number}: operation {len(ops) + 1} is truncated")
                if not all(1 <= m <= machines for m in pairs[::2]):
                    raise ValueError(f"job {number}: machine out of range 1..{machines}")
                ops.append([(pairs[i] - 1, pairs[i + 1]) for i in range(0, len(pairs), 2)])
                at += 1 + 2 * eligible
            if at != len(values):
                raise ValueError(f"job {number}: {len(values) - at} values left over")
            shop_jobs.append(ops)
    except (IndexError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error
    return shop_snapshot(path.stem, machines, shop_jobs)
