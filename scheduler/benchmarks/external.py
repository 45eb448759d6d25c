"""The external benchmarks: Brandimarte FJSP and classic job shop, through the production engine.

Each instance is read into a makespan snapshot, solved by the same ``solve()`` the service calls,
checked by the verifier and compared with the best-known makespan (and PyJobShop when installed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from scheduler.benchmarks.fjsp import read_fjs
from scheduler.benchmarks.jssp import jssp_snapshot, load_instances, reference
from scheduler.benchmarks.peer import PeerResult, pyjobshop_available, pyjobshop_makespan
from scheduler.benchmarks.runner import solve_snapshot
from scheduler.core.plan import Plan
from scheduler.core.snapshot import Snapshot
from scheduler.core.verify import verify

DEFAULT_JSSP = ("ft06", "ft10", "la01", "la16", "la21", "abz5", "orb01", "ta01")


@dataclass(frozen=True)
class ShopInstance:
    snapshot: Snapshot
    best_known: int | None  # best-known (upper) bound on the optimal makespan
    lower_bound: int | None  # best-known lower bound


@dataclass(frozen=True)
class ShopResult:
    name: str
    operations: int
    makespan: int | None  # None when some operation was left unscheduled
    best_known: int | None  # best-known (upper) bound on the optimal makespan
    lower_bound: int | None  # best-known lower bound
    engine_bound: int | None  # the bound our solve reported
    status: str
    seconds: float
    violations: int
    peer: PeerResult | None

    @property
    def gap(self) -> float | None:
        """(makespan - best known) / best known: how far from the best published schedule."""
        if self.makespan is None or not self.best_known:
            return None
        return (self.makespan - self.best_known) / self.best_known

    @property
    def peer_gap(self) -> float | None:
        if self.peer is None or self.peer.makespan is None or not self.best_known:
            return None
        return (self.peer.makespan - self.best_known) / self.best_known


def plan_makespan(plan: Plan) -> int | None:
    """Latest end of a complete plan; ``None`` if any job was left out."""
    if plan.unscheduled:
        return None
    return max((a.end for a in plan.assignments), default=0)


def run_shop(
    instance: ShopInstance,
    *,
    time_limit: float,
    workers: int,
    seed: int = 0,
    with_peer: bool = True,
) -> ShopResult:
    snapshot = instance.snapshot
    timed = solve_snapshot(snapshot, time_limit=time_limit, workers=workers, seed=seed)
    peer = None
    if with_peer and pyjobshop_available():
        peer = pyjobshop_makespan(snapshot, time_limit=time_limit, workers=workers)
    return ShopResult(
        name=snapshot.lab,
        operations=len(snapshot.jobs),
        makespan=plan_makespan(timed.plan),
        best_known=instance.best_known,
        lower_bound=instance.lower_bound,
        engine_bound=timed.plan.bound,
        status=timed.plan.status,
        seconds=timed.seconds,
        violations=len(verify(snapshot, timed.plan)),
        peer=peer,
    )


def fjsp_instances(directory: Path, names: Sequence[str] = ()) -> Iterator[ShopInstance]:
    """The ``.fjs`` files of ``directory`` (or just ``names``) with bounds from its ``bks.json``."""
    bks_path = directory / "bks.json"
    known = json.loads(bks_path.read_text())["instances"] if bks_path.exists() else {}
    paths = [directory / f"{n}.fjs" for n in names] if names else sorted(directory.glob("*.fjs"))
    for path in paths:
        bounds = known.get(path.stem, {})
        yield ShopInstance(read_fjs(path), bounds.get("upper_bound"), bounds.get("lower_bound"))


def jssp_instances(path: Path, names: Sequence[str] = DEFAULT_JSSP) -> Iterator[ShopInstance]:
    """Named instances of the job shop JSON file with their optimum or best-known bounds."""
    instances = load_instances(path)
    for name in names:
        if name not in instances:
            raise ValueError(f"{path}: no instance named {name!r}")
        known = reference(path, name)
        yield ShopInstance(
            jssp_snapshot(name, instances[name]), known.upper_bound, known.lower_bound
        )


def run_suite(
    instances: Iterable[ShopInstance],
    *,
    time_limit: float,
    workers: int,
    seed: int = 0,
    with_peer: bool = True,
    report: Callable[[ShopResult], None] = lambda _: None,
) -> list[ShopResult]:
    """Run every instance in turn, handing each result to ``report`` as soon as it is known."""
    results = []
    for instance in instances:
        result = run_shop(
            instance,
            time_limit=time_limit,
            workers=workers,
            seed=seed,
            with_peer=with_peer,
        )
        report(result)
        results.append(result)
    return results


def mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known and len(known) == len(values) else None
