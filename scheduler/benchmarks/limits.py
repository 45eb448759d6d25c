"""The limits benchmark: `labq solve` on snapshots at the snapshot contract's limits.

The contract (``scheduler/core/snapshot.py``) refuses labs beyond ``MAX_JOBS``, ``MAX_EXAMINERS``,
``MAX_WORKSTATIONS`` and ``MAX_HORIZON`` so that every lab it accepts is planned within the time
limit plus the documented allowance and 4 GB. This benchmark holds it to that: it writes a
snapshot at each limit (and one at ten times the medium lab), runs ``labq solve`` on it in a
child process, as a lab's operator would, and records the child's wall time and peak memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from scheduler.core.snapshot import (
    MAX_DAYS,
    MAX_EXAMINERS,
    MAX_JOBS,
    MAX_WORKSTATIONS,
    Examiner,
    Snapshot,
    Workstation,
    snapshot_to_json,
)
from scheduler.core.solve import allowance
from scheduler.generate import generate_lab

#: The lab every scenario starts from; the benchmark medium lab is 30 examiners, ~2,000 jobs.
BASE_SIZE = "medium"
#: Enough copies of the medium lab to exceed ``MAX_JOBS`` before it is trimmed to the limit.
MAX_JOBS_SCALE = 13
#: Whole weeks no longer than the contract's day limit.
MAX_HORIZON_DAYS = MAX_DAYS - MAX_DAYS % 7


@dataclass(frozen=True)
class LimitResult:
    name: str
    jobs: int
    examiners: int
    workstations: int
    horizon: int
    wall_seconds: float
    peak_rss_mb: float
    exit_code: int
    summary: str  # the status, objective and time lines `labq solve` printed

    def within(self, time_limit: float) -> bool:
        return self.exit_code == 0 and self.wall_seconds <= time_limit + allowance(time_limit)


def at_limits(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` with at most ``MAX_JOBS`` jobs and padded to ``MAX_EXAMINERS`` examiners and
    ``MAX_WORKSTATIONS`` workstations (copies of its own, so they serve the same work)."""
    jobs = snapshot.jobs[:MAX_JOBS]
    kept = {j.id for j in jobs}
    examiners = list(snapshot.examiners)
    for i in range(MAX_EXAMINERS - len(examiners)):
        model = snapshot.examiners[i % len(snapshot.examiners)]
        examiners.append(
            Examiner(f"{model.id}-copy{i}", model.skills, model.available, model.exposure)
        )
    workstations = list(snapshot.workstations)
    for i in range(MAX_WORKSTATIONS - len(workstations)):
        box = snapshot.workstations[i % len(snapshot.workstations)]
        workstations.append(
            Workstation(f"{box.id}-copy{i}", box.capabilities, box.capacity, box.available)
        )
    return replace(
        snapshot,
        jobs=jobs,
        examiners=tuple(examiners),
        workstations=tuple(workstations),
        previous=tuple(p for p in snapshot.previous if p.job in kept),
    )


def _trimmed(snapshot: Snapshot) -> Snapshot:
    return replace(snapshot, jobs=snapshot.jobs[:MAX_JOBS])


SCENARIOS: dict[str, Callable[[], Snapshot]] = {
    "medium-x10": lambda: generate_lab(BASE_SIZE, 1, scale=10),
    "max-jobs": lambda: _trimmed(generate_lab(BASE_SIZE, 1, scale=MAX_JOBS_SCALE)),
    "max-resources": lambda: at_limits(generate_lab(BASE_SIZE, 1, scale=10)),
    "max-horizon": lambda: generate_lab(BASE_SIZE, 1, horizon_days=MAX_HORIZON_DAYS),
    "all-limits": lambda: at_limits(
        generate_lab(BASE_SIZE, 1, scale=MAX_JOBS_SCALE, horizon_days=MAX_HORIZON_DAYS)
    ),
}


def _solve_child(command: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``command`` with its output in ``log``: (exit code, wall seconds, peak MiB).

    ``os.wait4`` gives this child's own peak resident memory (``ru_maxrss``, KiB on Linux).
    """
    with log.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return child.returncode, wall, usage.ru_maxrss / scale


def run_limit(name: str, time_limit: float, workers: int, directory: Path) -> LimitResult:
    """Write scenario ``name``'s snapshot and time ``labq solve`` on it in a child process."""
    snapshot = SCENARIOS[name]()
    path = directory / f"{name}.snapshot.json"
    path.write_text(json.dumps(snapshot_to_json(snapshot)))
    command = [
        sys.executable,
        "-c",
        "from api.cli import main; main()",
        "solve",
        str(path),
        "--time-limit",
        f"{time_limit:g}",
        "--workers",
        str(workers),
    ]
    log = directory / f"{name}.log"
    code, wall, peak = _solve_child(command, log)
    lines = [line.strip() for line in log.read_text().splitlines() if line.strip()]
    wanted = ("status", "objective", "bound", "time", "error")
    summary = "; ".join(line for line in lines if line.startswith(wanted))
    return LimitResult(
        name=name,
        jobs=len(snapshot.jobs),
        examiners=len(snapshot.examiners),
        workstations=len(snapshot.workstations),
        horizon=snapshot.horizon,
        wall_seconds=wall,
        peak_rss_mb=peak,
        exit_code=code,
        summary=summary,
    )


def run_limits(
    names: list[str], time_limit: float, workers: int, echo: Callable[[LimitResult], None]
) -> list[LimitResult]:
    results = []
    with tempfile.TemporaryDirectory(prefix="labq-limits-") as directory:
        for name in names:
            result = run_limit(name, time_limit, workers, Path(directory))
            echo(result)
            results.append(result)
    return results
