"""Engine commands of the `labq` CLI: offline solve, synthetic labs and benchmarks.

``register(app)`` adds ``solve``, ``generate`` and the ``bench`` group to the main app. They work on
snapshot and plan files only (docs/architecture.md §6), not the database. Exit codes of ``solve``:
0 with a verified plan, 2 for a malformed snapshot, 1 for anything else going wrong.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scheduler.benchmarks.external import ShopInstance, ShopResult
    from scheduler.benchmarks.lab import LabResult

logger = logging.getLogger(__name__)
# Lines are not wrapped: benchmark output is read from logs and compared between runs.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_FAILURE = 1
EXIT_MALFORMED = 2


class Policy(StrEnum):
    cpsat = "cpsat"
    fifo = "fifo"
    priority = "priority"
    wsjf = "wsjf"


class Size(StrEnum):
    small = "small"
    medium = "medium"
    large = "large"


def register(app: typer.Typer) -> None:
    """Add ``solve``, ``generate`` and the ``bench`` commands (lab, fjsp, jssp, repair, churn,
    scale, api, webhooks, sqlite-overload, limits) to the CLI."""
    app.command("solve")(solve)
    app.command("generate")(generate)
    bench = typer.Typer(
        help="Benchmarks: synthetic labs and external shop instances.", rich_markup_mode=None
    )
    bench.command("lab")(bench_lab)
    bench.command("fjsp")(bench_fjsp)
    bench.command("jssp")(bench_jssp)
    bench.command("repair")(bench_repair)
    bench.command("escalate")(bench_escalate)
    bench.command("churn")(bench_churn)
    bench.command("scale")(bench_scale)
    bench.command("api")(bench_api)
    bench.command("webhooks")(bench_webhooks)
    bench.command("sqlite-overload")(bench_sqlite_overload)
    bench.command("limits")(bench_limits)
    bench.command("recommend")(bench_recommend)
    bench.command("console")(bench_console)
    bench.command("whatif")(bench_whatif)
    app.add_typer(bench, name="bench", no_args_is_help=True)


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


# -- solve ------------------------------------------------------------------------------------


def solve(
    snapshot_file: Annotated[
        Path, typer.Argument(metavar="SNAPSHOT.json", help="A labq.snapshot/1 file.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the plan (labq.plan/1) here.")
    ] = None,
    time_limit: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds for the whole solve; it returns within this plus max(2 s, 10 %) "
            "(bound, explanations and forecast degrade rather than overrun).",
        ),
    ] = 30.0,
    workers: Annotated[
        int, typer.Option(min=1, help="CP-SAT worker threads (1: reproducible, paced by work).")
    ] = 2,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    policy: Annotated[Policy, typer.Option(help="cpsat, or one dispatch baseline.")] = Policy.cpsat,
) -> None:
    """Solve a snapshot file offline, verify the plan and print its figures."""
    started = time.monotonic()
    from scheduler.benchmarks.runner import gap, solve_snapshot
    from scheduler.core.plan import plan_to_json
    from scheduler.core.snapshot import SnapshotError, load_snapshot
    from scheduler.core.solve import limit_left
    from scheduler.core.verify import verify

    try:
        snapshot = load_snapshot(snapshot_file)
    except SnapshotError as exc:
        raise _fail(f"malformed snapshot: {exc}", EXIT_MALFORMED) from None
    budget = limit_left(time_limit, started, workers)  # reading the snapshot counts
    line = _ProgressLine(snapshot.lab, time_limit, started)
    try:
        # A live line on a terminal only: piped output (a log, a test) stays what it was.
        live = (
            Live(line, console=err_console, refresh_per_second=4, transient=True)
            if err_console.is_terminal
            else nullcontext()
        )
        with live:
            timed = solve_snapshot(
                snapshot,
                time_limit=budget,
                workers=workers,
                seed=seed,
                policy=policy.value,
                on_progress=line.update,
            )
        plan = timed.plan
        violations = verify(snapshot, plan)
    except Exception as exc:  # the CLI boundary: report, never a traceback
        logger.debug("solve failed", exc_info=True)
        raise _fail(f"solve failed: {type(exc).__name__}: {exc}", EXIT_FAILURE) from None
    if violations:
        for violation in violations[:10]:
            err_console.print(
                f"  {escape(violation.rule)} {escape(violation.job or '')}: "
                f"{escape(violation.detail)}"
            )
        raise _fail(f"the plan breaks {len(violations)} rule(s); not written", EXIT_FAILURE)
    if output is not None:
        try:
            output.write_text(json.dumps(plan_to_json(plan), indent=1) + "\n")
        except OSError as exc:
            raise _fail(f"cannot write plan: {exc}", EXIT_FAILURE) from None

    console.print(f"[bold]{escape(snapshot.lab)}[/bold]: {len(snapshot.jobs)} jobs")
    console.print(f"  status      {plan.status}")
    console.print(f"  objective   {_number(plan.objective)}")
    console.print(
        f"  bound       {_number(plan.bound)}   gap {_percent(gap(plan.objective, plan.bound))}"
    )
    console.print(f"  scheduled   {len(plan.assignments)}   unscheduled {len(plan.unscheduled)}")
    if plan.unscheduled:
        reasons = Counter(u.reason for u in plan.unscheduled)
        console.print("  reasons     " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
    if plan.terms:
        console.print("  terms       " + ", ".join(f"{k} {v:,}" for k, v in plan.terms.items()))
    console.print(
        f"  time        {timed.seconds:.2f} s "
        f"(policy {policy.value}, {workers} workers, seed {seed})"
    )
    console.print(
        f"  verified    every hard rule holds ({len(plan.assignments)} assignments and "
        f"{len(plan.unscheduled)} left out, checked by the independent verifier)"
    )
    for warning in plan.warnings:
        console.print(
            f"  [yellow]warning[/yellow]     {escape(warning.field)}: {escape(warning.detail)}"
        )
    if output is not None:
        console.print(f"  plan        {escape(str(output))}")


class _ProgressLine:
    """``labq solve``'s live line on a terminal: elapsed time and the best objective so far
    (the bound is worked out at the end, and printed with the figures)."""

    def __init__(self, lab: str, time_limit: float, started: float) -> None:
        self.lab, self.time_limit, self.started = lab, time_limit, started
        self.best: int | None = None

    def update(self, fraction: float, objective: int) -> None:
        self.best = objective

    def __rich__(self) -> Text:
        elapsed = time.monotonic() - self.started
        best = "none yet" if self.best is None else f"{self.best:,}"
        return Text(
            f"solving {self.lab}: {elapsed:.0f} s of {self.time_limit:g} s, best objective {best}",
            style="dim",
        )


# -- generate ---------------------------------------------------------------------------------


def generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Snapshot file to write.")],
    size: Annotated[Size, typer.Option(help="small ~8 examiners, medium ~30, large ~60.")] = (
        Size.small
    ),
    seed: Annotated[int, typer.Option(help="The same seed gives the same lab.")] = 1,
) -> None:
    """Write a realistic synthetic lab as a snapshot file."""
    from scheduler.core.snapshot import snapshot_to_json
    from scheduler.generate import generate_lab

    snapshot = generate_lab(size.value, seed)
    try:
        output.write_text(json.dumps(snapshot_to_json(snapshot), indent=1) + "\n")
    except OSError as exc:
        raise _fail(f"cannot write snapshot: {exc}", EXIT_FAILURE) from None
    cases = len({job.case for job in snapshot.jobs})
    console.print(
        f"{escape(snapshot.lab)}: {len(snapshot.examiners)} examiners, "
        f"{len(snapshot.workstations)} workstations, {cases} cases, {len(snapshot.jobs)} jobs "
        f"-> {escape(str(output))}"
    )


# -- bench ------------------------------------------------------------------------------------


def _header(workers: int, seed: int, time_limit: float) -> None:
    from scheduler.benchmarks.runner import ortools_version

    console.print(
        f"ortools {ortools_version()}, {workers} workers, seed {seed}, time limit {time_limit:g} s"
    )


def bench_lab(
    sizes: Annotated[str, typer.Option(help="Comma-separated: small, medium, large.")] = "small",
    seeds: Annotated[str, typer.Option(help="Comma-separated generator seeds.")] = "1",
    time_limit: Annotated[float, typer.Option(min=0.1)] = 30.0,
    workers: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    profile: Annotated[
        str,
        typer.Option(
            help="Comma-separated seconds, e.g. 10,30,60,300: one solve runs to the last and "
            "the objective and gap known at each are printed (anytime profile)."
        ),
    ] = "",
    moves: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9,
            help="Share of the search's clock for cheap relocation and swap moves between "
            "neighbourhood solves (0: none, the default).",
        ),
    ] = 0.0,
) -> None:
    """Optimizer vs the dispatch baselines on generated labs (weighted tardiness)."""
    from scheduler.benchmarks.lab import run_lab
    from scheduler.generate import SIZES

    chosen = _names(sizes)
    if unknown := [s for s in chosen if s not in SIZES]:
        raise _fail(f"unknown size(s): {', '.join(unknown)}", EXIT_MALFORMED)
    try:
        lab_seeds = [int(s) for s in _names(seeds)]
    except ValueError:
        raise _fail(f"seeds must be integers: {seeds}", EXIT_MALFORMED) from None
    try:
        checkpoints = sorted(float(t) for t in _names(profile))
    except ValueError:
        raise _fail(f"profile must be seconds: {profile}", EXIT_MALFORMED) from None
    if any(t <= 0 for t in checkpoints):
        raise _fail(f"profile seconds must be positive: {profile}", EXIT_MALFORMED)
    _header(workers, seed, max([time_limit, *checkpoints]))
    results = []
    for size in chosen:
        for lab_seed in lab_seeds:
            result = run_lab(
                size,
                lab_seed,
                time_limit=time_limit,
                workers=workers,
                solver_seed=seed,
                checkpoints=checkpoints,
                moves=moves,
            )
            _print_lab(result)
            results.append(result)
    if any(r.violations for r in results):
        raise _fail("some plans broke the rules (see above)", EXIT_FAILURE)


def _print_lab(r: LabResult) -> None:
    console.print(
        f"[bold]{r.size} seed {r.seed}[/bold]: {r.examiners} examiners, {r.jobs} jobs, "
        f"status {r.status}, {r.scheduled} scheduled"
    )
    console.print(
        "  weighted tardiness  "
        + "  ".join(f"{p} {_number(v)}" for p, v in r.baselines.items())
        + f"  optimizer {_number(r.tardiness)}"
    )
    console.print(
        f"  avoidable           optimizer {_number(r.avoidable)} vs {r.best_baseline} "
        f"{_number(r.baseline_avoidable)}: ratio {_number(r.ratio, 3)} "
        f"(critical path {_number(r.critical_path)}; above our bound: ratio "
        f"{_number(r.ratio_above_bound, 3)}; no plan can go below {_number(r.ratio_floor, 3)})"
    )
    console.print(
        f"  bound               {_number(r.bound)}  gap {_percent(r.gap)}  "
        f"(LP bound {_number(r.lp_bound)} in {_seconds(r.lp_seconds)})  "
        f"first plan {_seconds(r.first_plan_seconds)}  total {r.seconds:.1f} s  "
        f"peak RSS {r.peak_rss_mb:.0f} MiB"
    )
    if r.profile:
        console.print(
            "  anytime             "
            + "  ".join(f"{t:g} s {_number(v)} (gap {_percent(g)})" for t, v, g in r.profile_gaps())
        )
    if r.search is not None:
        f = r.search
        console.print(
            f"  search              {f.neighbourhoods} neighbourhoods, {f.improvements} better: "
            f"{f.per_minute:.0f} a minute of its clock ({f.clock:.1f} s), "
            f"{f.per_wall_minute:.0f} a wall minute; build {f.build:.1f} s, solve {f.solve:.1f} s"
        )
        console.print(
            "  by kind             "
            + "  ".join(
                f"{kind} {tries:.0f}/{better:.0f} -{_number(int(gained))} "
                f"build {_ms(built, tries)} solve {_ms(solved, tries)}"
                for kind, (tries, better, gained, _, built, solved, _) in f.by_kind.items()
            )
        )
        tried, accepted, gained, wall, spent = f.moves
        if tried:
            console.print(
                f"  moves               {tried:.0f} tried, {accepted:.0f} accepted "
                f"-{_number(int(gained))}: {60 * tried / max(f.clock, 1e-9):.0f} / "
                f"{60 * accepted / max(f.clock, 1e-9):.0f} a minute of its clock "
                f"({spent:.1f} s of it), {_ms(wall, tried)} wall each"
            )
    if r.violations:
        err_console.print(f"  [red]{r.violations} verifier violation(s)[/red]")


def _ms(seconds: float, count: float) -> str:
    """Milliseconds per item."""
    return f"{1000 * seconds / max(count, 1):.0f} ms"


def _shop_line(r: ShopResult | None, peer: bool) -> str:
    """One fixed-width row of the summary; the header when ``r`` is None."""
    if r is None:
        cells = ["instance", "ops", "makespan", "best known", "gap", "time s"]
        cells += ["PyJobShop", "gap"] if peer else []
        cells.append("status")
    else:
        known = _number(r.best_known)
        if r.lower_bound is not None and r.lower_bound != r.best_known:
            known = f"{r.lower_bound}-{r.best_known}"
        cells = [
            r.name,
            str(r.operations),
            _number(r.makespan),
            known,
            _percent(r.gap),
            f"{r.seconds:.1f}",
        ]
        if peer:
            cells += [_number(r.peer.makespan if r.peer else None), _percent(r.peer_gap)]
        cells.append(r.status + (f", {r.violations} VIOLATIONS" if r.violations else ""))
    widths = [9, 5, 9, 11, 8, 7] + ([10, 8] if peer else [])
    line = cells[0].ljust(widths[0]) + "".join(
        cell.rjust(width) for cell, width in zip(cells[1:-1], widths[1:], strict=True)
    )
    return f"{line}  {cells[-1]}"


def _run_shops(
    title: str, instances: Iterable[ShopInstance], time_limit: float, workers: int, seed: int
) -> None:
    from scheduler.benchmarks.external import mean, run_suite
    from scheduler.benchmarks.peer import pyjobshop_available

    peer = pyjobshop_available()
    _header(workers, seed, time_limit)
    if not peer:
        console.print("PyJobShop is not installed (pip install 'labq[bench]'); labq only")

    def report(result: ShopResult) -> None:
        console.print(
            f"  {result.name}: makespan {_number(result.makespan)} "
            f"(best known {_number(result.best_known)}, gap {_percent(result.gap)})"
            + (f", PyJobShop {_number(result.peer.makespan)}" if result.peer else "")
        )

    results = run_suite(
        instances,
        time_limit=time_limit,
        workers=workers,
        seed=seed,
        with_peer=peer,
        report=report,
    )
    console.print(f"[bold]{title}[/bold]")
    console.print(escape(_shop_line(None, peer)))
    for result in results:
        console.print(escape(_shop_line(result, peer)))
    console.print(f"mean gap to best known: labq {_percent(mean([r.gap for r in results]))}")
    if peer:
        console.print(
            f"mean gap to best known: PyJobShop {_percent(mean([r.peer_gap for r in results]))}"
        )
    if any(r.violations for r in results):
        raise _fail("some plans broke the rules", EXIT_FAILURE)


def bench_fjsp(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Folder of .fjs files with a bks.json.")
    ],
    time_limit: Annotated[float, typer.Option(min=0.1)] = 30.0,
    workers: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    instances: Annotated[str, typer.Option(help="Comma-separated names; default all.")] = "",
) -> None:
    """Brandimarte FJSP (mk01-mk10) through the engine: makespan vs best known."""
    from scheduler.benchmarks.external import fjsp_instances

    if not directory.is_dir():
        raise _fail(f"not a folder: {directory}", EXIT_MALFORMED)
    names = _names(instances)
    if missing := [n for n in names if not (directory / f"{n}.fjs").exists()]:
        raise _fail(f"no such instance(s) in {directory}: {', '.join(missing)}", EXIT_MALFORMED)
    suite = fjsp_instances(directory, names)
    _run_shops("Brandimarte FJSP", suite, time_limit, workers, seed)


def bench_jssp(
    path: Annotated[
        Path,
        typer.Argument(metavar="PATH", help="benchmark_instances.json, or the folder holding it."),
    ],
    instances: Annotated[str, typer.Option(help="Comma-separated instance names.")] = (
        "ft06,ft10,la01,la16,la21,abz5,orb01,ta01"
    ),
    time_limit: Annotated[float, typer.Option(min=0.1)] = 30.0,
    workers: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
) -> None:
    """Classic job shop instances through the engine: makespan vs optimum or best known."""
    from scheduler.benchmarks.external import jssp_instances
    from scheduler.benchmarks.jssp import load_instances

    if path.is_dir():
        path = path / "benchmark_instances.json"
    if not path.is_file():
        raise _fail(f"no such file: {path}", EXIT_MALFORMED)
    names = _names(instances)
    if missing := [n for n in names if n not in load_instances(path)]:
        raise _fail(f"no such instance(s) in {path}: {', '.join(missing)}", EXIT_MALFORMED)
    _run_shops("Job shop", jssp_instances(path, names), time_limit, workers, seed)


# -- continuous planning benchmarks (scheduler/benchmarks/continuous.py) ----------------------

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="An empty database to use (default: a temporary SQLite file)."
    ),
]


def bench_repair(
    database_url: DatabaseUrl = None,
    size: Annotated[Size, typer.Option(help="Generated lab size.")] = Size.medium,
    nightly_time_limit: Annotated[int, typer.Option(min=1, max=3600)] = 30,
) -> None:
    """Time from POSTing a new P1 case to a published schedule holding it (worker running)."""
    from scheduler.benchmarks.continuous import bench_repair as run
    from scheduler.benchmarks.runner import ortools_version

    console.print(f"ortools {ortools_version()}, cores {os.cpu_count()}, seed 1")
    r = run(
        database_url, size=size.value, nightly_time_limit=nightly_time_limit, echo=console.print
    )
    figure = (
        "not published"
        if r.published_after_seconds is None
        else (f"{r.published_after_seconds:.1f} s")
    )
    run_time = "n/a" if r.run_seconds is None else f"{r.run_seconds:.1f} s"
    console.print(
        f"repair ({r.backend}) {r.jobs} jobs: new P1 case published after {figure} "
        f"(target <= 10 s; repair run {run_time}); nightly full run {r.nightly_seconds:.1f} s"
    )


def bench_escalate(
    database_url: DatabaseUrl = None,
    nightly_time_limit: Annotated[int, typer.Option(min=1, max=3600)] = 30,
) -> None:
    """One P4 -> P1 escalation on the demo lab: what else moved, and how soon it was published."""
    from scheduler.benchmarks.escalate import bench_escalate as run
    from scheduler.benchmarks.runner import ortools_version

    console.print(f"ortools {ortools_version()}, cores {os.cpu_count()}")
    r = run(database_url, nightly_time_limit=nightly_time_limit, echo=console.print)
    published = (
        "not published"
        if r.published_after_seconds is None
        else f"{r.published_after_seconds:.1f} s"
    )
    run_time = "n/a" if r.run_seconds is None else f"{r.run_seconds:.1f} s"
    later = ", ".join(f"{ref} +{hours} h" for ref, hours in r.later_urgent) or "none"
    console.print(
        f"escalate ({r.backend}) {r.case} P4 -> P1: other cases' assignments in the next three "
        f"days {r.window_assignments}, moved {r.moved}, removed {r.removed} = "
        f"{r.changed_percent:.1f} % (target <= 10 %); inside the frozen window "
        f"{r.inside_frozen} (target 0); other P1/P2 cases finishing later: {later}; "
        f"published after {published} (target <= 10 s; run {r.run_status}, {run_time}); "
        f"other cases' assignments moved or removed over the whole horizon: {r.moved_anywhere}"
    )
    for warning in r.unscheduled_warnings:
        console.print(f"  the repaired version says: {warning}")


def bench_churn(
    database_url: DatabaseUrl = None,
    size: Annotated[Size, typer.Option(help="Generated lab size.")] = Size.medium,
    time_limit: Annotated[int, typer.Option(min=1, max=3600)] = 30,
    weight_change: Annotated[
        int | None, typer.Option(min=0, max=1_000_000, help="The lab's change weight.")
    ] = None,
) -> None:
    """Share of the next three days' assignments a nightly re-run changes (vs from scratch)."""
    from scheduler.benchmarks.continuous import bench_churn as run
    from scheduler.benchmarks.runner import ortools_version

    console.print(f"ortools {ortools_version()}, cores {os.cpu_count()}, seed 1")
    r = run(
        database_url,
        size=size.value,
        time_limit=time_limit,
        weight_change=weight_change,
        echo=console.print,
    )
    console.print(
        f"churn: {r.new_jobs} new jobs + 1 absence; of {r.compared} assignments in the next three "
        f"days the nightly re-run changed {r.changed_rerun} ({r.rerun_percent:.1f} %, target <= "
        f"10 %), a from-scratch solve {r.changed_scratch} ({r.scratch_percent:.1f} %); counting "
        f"only examiner, workstation or day changes (the stability term): re-run "
        f"{r.moved_day_rerun} ({100 * r.moved_day_rerun / max(1, r.compared):.1f} %), from "
        f"scratch {r.moved_day_scratch} ({100 * r.moved_day_scratch / max(1, r.compared):.1f} %)"
    )
    for day, compared, moved in r.by_day:
        console.print(f"  {day}: {compared} assignments, re-run moved {moved}")


def bench_scale(
    database_url: DatabaseUrl = None,
    time_limit: Annotated[int, typer.Option(min=1, max=3600, help="Seconds per lab.")] = 30,
    via_workers: Annotated[
        int,
        typer.Option(
            min=0,
            max=64,
            help="Start this many `labq worker` processes and run reoptimize --via-workers "
            "(0: solve in reoptimize's own processes).",
        ),
    ] = 0,
) -> None:
    """20 labs / ~200 examiners / 20,000 jobs through `labq reoptimize --all-labs --publish`."""
    from scheduler.benchmarks.continuous import bench_scale as run
    from scheduler.benchmarks.runner import ortools_version

    fleet = f", {via_workers} worker process(es)" if via_workers else ", in-process"
    console.print(
        f"ortools {ortools_version()}, cores {os.cpu_count()}, {time_limit} s per lab{fleet}"
    )
    r = run(database_url, time_limit=time_limit, via_workers=via_workers, echo=console.print)
    times = sorted(r.per_lab.values())
    console.print(
        "per-lab solve runs: "
        + ", ".join(f"{code} {seconds:.0f} s" for code, seconds in sorted(r.per_lab.items()))
    )
    console.print(
        f"scale: {r.labs} labs, {r.examiners} examiners, {r.jobs} jobs (seeded in "
        f"{r.seed_seconds:.1f} s); reoptimize --all-labs wall {r.wall_seconds:.0f} s (target <= "
        f"900 s), exit {r.exit_code}; per lab max {max(times, default=0):.0f} s; peak RSS of "
        f"the process tree {r.peak_rss_mb:.0f} MB (target <= 4096 MB); failed: "
        f"{', '.join(r.failed) or 'none'}"
    )


# -- API reads benchmark (scheduler/benchmarks/api_reads.py) ----------------------------------


class ApiLab(StrEnum):
    demo = "demo"
    small = "small"
    medium = "medium"


class ApiClient(StrEnum):
    raw = "raw"
    httpx = "httpx"


def bench_api(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="A PostgreSQL database to use (a published lab there is reused; default: a new "
            "database on --admin-url, dropped at the end).",
        ),
    ] = None,
    admin_url: Annotated[
        str, typer.Option(help="The server to create the benchmark database on.")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    lab: Annotated[ApiLab, typer.Option(help="The demo lab, or a generated one.")] = ApiLab.demo,
    clients: Annotated[int, typer.Option(min=1, max=1000, help="Concurrent clients.")] = 50,
    duration: Annotated[float, typer.Option(min=1, help="Seconds measured per phase.")] = 30,
    warmup: Annotated[float, typer.Option(min=0, help="Seconds run before measuring.")] = 3,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes.")] = 2,
    client: Annotated[ApiClient, typer.Option(help="The load generator.")] = ApiClient.raw,
    time_limit: Annotated[int, typer.Option(min=1, max=600, help="Seconds for the solve.")] = 20,
    think: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds a client pauses after each pass over its reads (0: closed loop)."
        ),
    ] = 0.0,
    keep: Annotated[bool, typer.Option(help="Keep a database this command created.")] = False,
    server_checkout: Annotated[
        Path | None,
        typer.Option(help="Serve another checkout's code (e.g. an earlier commit) to compare."),
    ] = None,
) -> None:
    """p50/p95/p99 of schedule reads at N concurrent clients against `labq serve` (PostgreSQL)."""
    from scheduler.benchmarks import api_reads as bench
    from scheduler.settings import get_settings

    if database_url is not None and not database_url.startswith("postgresql"):
        raise _fail("bench api measures PostgreSQL: --database-url must be postgresql+...", 2)
    settings = get_settings()
    prepared = None
    server = None
    try:
        prepared = bench.prepare(
            database_url,
            admin_url=admin_url,
            lab=lab.value,
            time_limit=time_limit,
            examiners=clients,
            echo=console.print,
        )
        facts = bench.postgres_facts(prepared.url)
        checkout = str(server_checkout.resolve()) if server_checkout is not None else None
        server = bench.start_server(prepared.url, workers, checkout)
        console.print(
            f"lab {prepared.lab}: published version {prepared.version_id} with "
            f"{prepared.assignments} assignments (ready in {prepared.seed_seconds:.1f} s); "
            f"assignments window {bench._q(prepared.window[0])} .. {bench._q(prepared.window[1])}"
        )
        console.print(
            f"PostgreSQL {facts.pop('version')}: " + ", ".join(f"{k}={v}" for k, v in facts.items())
        )
        console.print(
            f"server: labq serve --workers {workers}, embedded worker off, pool "
            f"{settings.db_pool_size}+{settings.db_max_overflow} per process, key cache "
            f"{settings.key_cache_seconds:g} s; code {checkout or 'this checkout'}; "
            f"cores {os.cpu_count()}; client {client.value}, "
            f"{clients} clients, "
            + ("closed loop (no think time)" if not think else f"{think:g} s think time per pass")
            + f", {warmup:g} s warm-up + "
            f"{duration:g} s per phase"
        )
        # The client's own cost first: /health does next to nothing, always as a closed loop.
        health = [[bench.Call("health", "/health", {})] for _ in range(clients)]
        reads = bench.schedule_plans(prepared, clients)
        phases = (("load generator", health, 0.0), ("schedule reads", reads, think))
        for name, plans, pause in phases:
            console.print(f"[bold]{name}[/bold]   {bench.uptime()}")
            phase = bench.drive(
                server.port, plans, duration, warmup, client.value, server, prepared.url, pause
            )
            _print_phase(phase)
    except (RuntimeError, OSError) as exc:
        raise _fail(str(exc), EXIT_FAILURE) from None
    finally:
        if server is not None:
            server.stop()
        if prepared is not None and prepared.created and not keep:
            bench.drop_database(admin_url, prepared.created)
            console.print(f"dropped database {prepared.created}")
        elif prepared is not None and prepared.created:
            console.print(f"kept database {prepared.created}")
    console.print(f"after   {bench.uptime()}")


class OverloadLab(StrEnum):
    demo = "demo"
    small = "small"
    medium = "medium"


def bench_sqlite_overload(
    lab: Annotated[OverloadLab, typer.Option(help="The demo lab, or a generated one.")] = (
        OverloadLab.small
    ),
    clients: Annotated[int, typer.Option(min=1, max=500, help="Clients without pauses.")] = 40,
    imports: Annotated[int, typer.Option(min=0, max=100, help="Bulk imports, back to back.")] = 8,
    cases: Annotated[int, typer.Option(min=1, max=10_000, help="Cases per bulk import.")] = 10_000,
    time_limit: Annotated[int, typer.Option(min=1, max=600, help="Seconds for the solve.")] = 40,
    port: Annotated[int | None, typer.Option(help="Port for labq serve (default: a free one).")] = (
        None
    ),
    busy_timeout: Annotated[
        float | None, typer.Option(help="LABQ_DB_BUSY_TIMEOUT_SECONDS for the server.")
    ] = None,
) -> None:
    """Reads, small writes and bulk imports at once on `labq serve` (SQLite) during a solve."""
    from scheduler.benchmarks import sqlite_overload as bench
    from scheduler.benchmarks.api_reads import uptime

    try:
        outcome = bench.run(
            lab=lab.value,
            clients=clients,
            imports=imports,
            cases=cases,
            time_limit=time_limit,
            port=port,
            busy_timeout=busy_timeout,
            echo=console.print,
        )
    except (RuntimeError, OSError) as exc:
        raise _fail(str(exc), EXIT_FAILURE) from None
    bench.report(outcome, time_limit, lambda line: console.print(escape(line)))
    console.print(f"after   {uptime()}")


def _print_phase(phase: Any) -> None:
    from scheduler.benchmarks.api_reads import summary

    total = phase.requests
    console.print(
        f"  {'route':<16} {'requests':>9} {'errors':>6} {'req/s':>8} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'bytes':>8}"
    )
    for route, stats in phase.routes.items():
        s = summary(stats, phase.seconds)
        console.print(
            f"  {route:<16} {s['requests']:>9,} {s['errors']:>6,} {s['rps']:>8.1f} "
            f"{1000 * s['p50']:>8.1f} {1000 * s['p95']:>8.1f} {1000 * s['p99']:>8.1f} "
            f"{1000 * s['max']:>8.1f} {s['bytes']:>8,.0f}"
        )
    every = type(next(iter(phase.routes.values())))()
    for stats in phase.routes.values():
        every.requests += stats.requests
        every.errors += stats.errors
        every.latencies.extend(stats.latencies)
        every.bytes += stats.bytes
    s = summary(every, phase.seconds)
    console.print(
        f"  {'all':<16} {s['requests']:>9,} {s['errors']:>6,} {s['rps']:>8.1f} "
        f"{1000 * s['p50']:>8.1f} {1000 * s['p95']:>8.1f} {1000 * s['p99']:>8.1f} "
        f"{1000 * s['max']:>8.1f} {s['bytes']:>8,.0f}"
    )
    client_share = phase.client_cpu_seconds / phase.seconds
    saturated = "  [red]saturated: the client bounds these[/red]" if client_share > 0.9 else ""
    console.print(
        f"  load generator CPU {100 * client_share:.0f} % of one core "
        f"({1e6 * phase.client_cpu_seconds / max(1, total):.0f} us/request)"
        + saturated
        + f"; server CPU {1000 * phase.server_cpu_seconds / max(1, total):.2f} ms/request "
        f"({phase.server_cpu_seconds / phase.seconds:.2f} cores); PostgreSQL backends "
        f"{1000 * phase.database_cpu_seconds / max(1, total):.2f} ms/request "
        f"({phase.database_cpu_seconds / phase.seconds:.2f} cores), "
        f"{phase.connections_opened} connections opened; whole machine busy "
        f"{phase.machine_cpu_seconds / phase.seconds:.2f} of {os.cpu_count()} cores"
    )


def bench_webhooks(
    admin_url: Annotated[
        str, typer.Option(help="The PostgreSQL server to create the benchmark database on.")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of labq serve.")] = 8180,
    receiver_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the loopback receiver.")
    ] = 8190,
    workers: Annotated[
        int, typer.Option(min=1, max=8, help="labq worker processes (delivery loops).")
    ] = 2,
    down: Annotated[float, typer.Option(min=1, help="Seconds the receiver is down.")] = 120,
    every: Annotated[float, typer.Option(min=1, help="Seconds between published runs.")] = 15,
    time_limit: Annotated[int, typer.Option(min=1, max=60, help="Seconds per solve.")] = 2,
    drain_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the outbox to empty.")
    ] = 900,
    backoff_cap: Annotated[
        float | None,
        typer.Option(help="LABQ_WEBHOOK_BACKOFF_CAP_SECONDS for the workers (default: theirs)."),
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the database.")] = False,
) -> None:
    """Webhooks through a receiver outage: produced, delivered, duplicates, order, delays."""
    from scheduler.benchmarks import webhooks as bench
    from scheduler.benchmarks.api_reads import uptime
    from scheduler.settings import get_settings

    env = {"LABQ_EMBEDDED_WORKER": "false"}
    if backoff_cap is not None:
        env["LABQ_WEBHOOK_BACKOFF_CAP_SECONDS"] = str(backoff_cap)
    settings = get_settings().model_copy(
        update={"webhook_backoff_cap_seconds": backoff_cap} if backoff_cap is not None else {}
    )
    console.print(
        f"labq serve :{port} + {workers} labq worker(s) on PostgreSQL; retry policy: "
        f"{settings.webhook_backoff_base_seconds:g} s x 2^n, cap "
        f"{settings.webhook_backoff_cap_seconds:g} s, jitter 50-100 %, timeout "
        f"{settings.webhook_timeout_seconds:g} s, max age {settings.webhook_max_age_seconds:g} s; "
        f"{uptime()}"
    )
    try:
        f = bench.run_benchmark(
            admin_url=admin_url,
            port=port,
            receiver_port=receiver_port,
            workers=workers,
            down=down,
            every=every,
            time_limit=time_limit,
            drain_timeout=drain_timeout,
            env=env,
            keep=keep,
            echo=console.print,
        )
    except (RuntimeError, OSError) as exc:
        raise _fail(str(exc), EXIT_FAILURE) from None
    delays = sorted(f.delays)
    p50 = delays[len(delays) // 2] if delays else float("nan")
    console.print(
        f"runs published {f.runs_published}, runs failed {f.runs_failed}; events produced "
        f"{f.produced} ({', '.join(f'{k} {v}' for k, v in sorted(f.by_type.items()))})"
    )
    console.print(
        f"delivered {f.delivered}, duplicates {f.duplicates}, out of order {f.out_of_order}, "
        f"failed {f.failed}, still pending {f.pending}; attempts {f.attempts}, "
        f"requests seen by the receiver {f.requests}"
    )
    console.print(
        f"delay after the receiver returned: p50 {p50:.1f} s, max "
        f"{(delays[-1] if delays else float('nan')):.1f} s; outbox empty after "
        f"{f.drain_seconds:.1f} s; {uptime()}"
    )
    if f.delivered != f.produced or f.duplicates or f.out_of_order:
        raise typer.Exit(EXIT_FAILURE)


# -- limits benchmark (scheduler/benchmarks/limits.py) -----------------------------------------


def bench_recommend(
    time_limit: Annotated[int, typer.Option(min=1, help="Seconds for the demo's solve.")] = 10,
) -> None:
    """Recommendations on the demo lab after a pin: share of jobs with options, latency."""
    from scheduler.benchmarks.recommend import run_recommend

    console.print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, demo lab (SQLite)")
    r = run_recommend(time_limit)
    movable = r.jobs - r.kept
    share = r.with_options / movable if movable else 0.0
    console.print(
        f"pinned {escape(r.pinned or 'nothing')}; {r.jobs} scheduled jobs asked, {r.kept} kept "
        f"(pinned or frozen); {r.with_options} of the other {movable} with options "
        f"({share:.0%}; {r.pushed_only} only by pushing successors later); {r.unexplained} "
        f"answers leave something unexplained; p50 {r.p50_ms:.0f} ms, p95 {r.p95_ms:.0f} ms, "
        f"max {r.max_ms:.0f} ms (target p95 <= 200 ms); cold, each call loading the lab: "
        f"p50 {r.cold_p50_ms:.0f} ms, p95 {r.cold_p95_ms:.0f} ms"
    )


def bench_console(
    time_limit: Annotated[int, typer.Option(min=1, help="Seconds for the demo's solve.")] = 10,
    rounds: Annotated[int, typer.Option(min=1, max=1000, help="Requests per page.")] = 20,
) -> None:
    """Server time of every web console page on the demo lab (target: each <= 300 ms)."""
    from scheduler.benchmarks.console import run_console

    console.print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, demo lab (SQLite)")
    facts, timings = run_console(time_limit, rounds)
    console.print(f"{escape(facts)}; {rounds} requests per page, server time from the access log")
    for t in timings:
        verdict = "ok" if t.p95_ms <= 300 else "over 300 ms"
        console.print(
            f"  {t.page:<18} {t.status} {t.bytes / 1024:7.1f} KiB  p50 {t.p50_ms:6.1f} ms  "
            f"p95 {t.p95_ms:6.1f} ms  max {t.max_ms:6.1f} ms  {verdict}"
        )
    worst = max(timings, key=lambda t: t.p95_ms)
    console.print(f"slowest page: {worst.page}, p95 {worst.p95_ms:.1f} ms (target 300 ms)")


def bench_whatif(
    time_limit: Annotated[
        int, typer.Option(min=1, help="Seconds for the demo's solve and each preview.")
    ] = 20,
    scenarios: Annotated[
        str, typer.Option(help="Comma-separated: licences, licences+server, weekend, reviewer.")
    ] = "licences,licences+server,weekend,reviewer",
) -> None:
    """Capacity and what-if previews on the demo lab: read latency, preview time, comparison."""
    from scheduler.benchmarks.whatif import SCENARIOS, run_whatif

    chosen = _names(scenarios)
    if unknown := [s for s in chosen if s not in SCENARIOS]:
        raise _fail(f"unknown scenario(s): {', '.join(unknown)}", EXIT_MALFORMED)
    console.print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, demo lab (SQLite)")
    r = run_whatif(time_limit, chosen)
    console.print(
        f"GET /capacity: p50 {r.capacity_p50_ms:.1f} ms, max {r.capacity_max_ms:.1f} ms; "
        f"{escape(r.sentence)}"
    )
    for name, seconds, comparison, error in r.runs:
        if comparison is None:
            console.print(f"{escape(name)}: failed: {escape(error or 'no detail')}")
            continue
        before, after = comparison["baseline"] or {}, comparison["preview"]
        console.print(
            f"{escape(name)}: preview in {seconds:.1f} s (solve {after['solve_seconds']:.1f} s, "
            f"{after['status']}); scheduled {before.get('scheduled')} -> {after['scheduled']}; "
            f"examiners busy {_percent(before.get('examiner_share'))} -> "
            f"{_percent(after['examiner_share'])}; exposure breaches "
            f"{before.get('exposure', {}).get('breaches')} -> {after['exposure']['breaches']}"
        )
        for code, figures in after["on_target"].items():
            was = (before.get("on_target") or {}).get(code, {})
            console.print(
                f"  {code}: on target {was.get('on_time')}/{was.get('cases')} -> "
                f"{figures['on_time']}/{figures['cases']}; cleared by "
                f"{_day((before.get('cleared_by') or {}).get(code))} -> "
                f"{_day(after['cleared_by'].get(code))}"
            )
        console.print(f"  now: {escape(str(after['bottleneck']))}")


def _day(value: str | None) -> str:
    return value[:10] if value else "never"


def bench_limits(
    scenarios: Annotated[
        str,
        typer.Option(
            help="Comma-separated: medium-x10, max-jobs, max-resources, max-horizon, all-limits."
        ),
    ] = "medium-x10,max-jobs,max-resources,max-horizon,all-limits",
    time_limit: Annotated[float, typer.Option(min=0.1, help="--time-limit of each solve.")] = 10.0,
    workers: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """`labq solve` on snapshots at the contract's limits: wall time and peak memory of each."""
    from scheduler.benchmarks.limits import SCENARIOS, LimitResult, run_limits
    from scheduler.core.solve import allowance

    chosen = _names(scenarios)
    if unknown := [s for s in chosen if s not in SCENARIOS]:
        raise _fail(f"unknown scenario(s): {', '.join(unknown)}", EXIT_MALFORMED)
    promise = time_limit + allowance(time_limit)
    console.print(
        f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, --time-limit {time_limit:g} s "
        f"(promise <= {promise:g} s), {workers} workers"
    )

    def echo(r: LimitResult) -> None:
        verdict = "ok" if r.within(time_limit) and r.peak_rss_mb <= 4096 else "MISSED"
        verdict = escape(f"[{verdict}]")
        console.print(
            f"{r.name}: {r.jobs:,} jobs, {r.examiners} examiners, {r.workstations} "
            f"workstations, horizon {r.horizon:,} min -> exit {r.exit_code}, wall "
            f"{r.wall_seconds:.1f} s, peak {r.peak_rss_mb:,.0f} MB {verdict}"
        )
        console.print(f"  {escape(r.summary)}")

    results = run_limits(chosen, time_limit, workers, echo)
    if any(r.exit_code != 0 for r in results):
        raise _fail("some solves failed (see above)", EXIT_FAILURE)
