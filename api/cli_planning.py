"""Planning commands of the `labq` CLI: ``worker``, ``reoptimize`` and the demo's solve.

``register(app)`` adds ``worker`` (executes queued solve runs until stopped) and ``reoptimize``
(the nightly run: one full solve per lab, labs in parallel processes, a progress bar per lab, a
summary, and a non-zero exit naming every lab that failed — each keeps its published schedule).
``demo_solve`` is called by ``labq demo`` after seeding.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli_tables import Cell, Format, emit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models import Lab
    from scheduler.planning.demo import DemoResult

logger = logging.getLogger(__name__)
console = Console()
err_console = Console(stderr=True)

GANTT_FILE = "labq-gantt.html"
EXIT_FAILED = 1


class Policy(StrEnum):
    cpsat = "cpsat"
    fifo = "fifo"
    priority = "priority"
    wsjf = "wsjf"


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("deliver")(deliver)
    app.command("reoptimize")(reoptimize)


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def _severities(max_severity: int) -> str:
    return "no exposure work" if max_severity < 1 else f"severity 1-{max_severity}"


def _late_case(item: dict[str, Any], tz: ZoneInfo) -> str:
    """``CR-2026-0401 (target Thu 03 Dec 18:00, expected Fri 04 Dec 10:00)``, in lab time."""

    def local(value: str | None) -> str:
        if value is None:
            return "none"
        return f"{datetime.fromisoformat(value).astimezone(tz):%a %d %b %H:%M}"

    return (
        f"{item['case']} (target {local(item.get('target_start'))}, "
        f"expected {local(item.get('expected_start'))})"
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


# ---- worker ---------------------------------------------------------------------------------


def worker(
    worker_id: Annotated[
        str | None, typer.Option("--id", help="Worker name in runs and the audit trail.")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Execute at most one queued run, then exit.")
    ] = False,
    poll: Annotated[
        float, typer.Option(min=0.1, max=60, help="Seconds between polls of an empty queue.")
    ] = 1.0,
    policy: Annotated[Policy, typer.Option(help="Optimizer or a dispatch baseline.")] = (
        Policy.cpsat
    ),
    webhooks: Annotated[
        bool,
        typer.Option(
            "--webhooks/--no-webhooks",
            help="Also post webhook deliveries, in a thread of their own.",
        ),
    ] = True,
    solver_threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="CP-SAT search threads per solve (default 2); with several workers on one "
            "host, cores divided by workers keeps them from crowding each other.",
        ),
    ] = None,
) -> None:
    """Execute queued solve runs (several workers may share a database); also post webhooks."""
    import threading

    from scheduler.db import get_engine
    from scheduler.delivery import start_delivery_thread
    from scheduler.worker import default_worker_id, run_once, work

    ident = worker_id or default_worker_id()
    engine = get_engine()
    if once:
        did = run_once(engine, ident, policy=policy.value, workers=solver_threads)
        err_console.print("executed one run" if did else "no queued run")
        return
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        err_console.print("stopping after the current run (signal again to abort it)")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    err_console.print(f"worker [cyan]{escape(ident)}[/cyan] waiting for solve runs")
    stop_delivery = start_delivery_thread(engine) if webhooks else None
    try:
        work(engine, ident, stop, policy=policy.value, poll_seconds=poll, workers=solver_threads)
    finally:
        if stop_delivery is not None:
            stop_delivery()


def deliver(
    once: Annotated[
        bool, typer.Option("--once", help="Post what is due now (one step), then exit.")
    ] = False,
) -> None:
    """Post pending webhook deliveries (several delivery loops may share a database)."""
    import threading

    from scheduler.db import get_engine
    from scheduler.delivery import deliver_due, run_deliveries

    engine = get_engine()
    if once:
        step = deliver_due(engine)
        err_console.print(
            f"posted {step.attempted}: {step.delivered} delivered, {step.retrying} to retry, "
            f"{step.failed} given up"
        )
        return
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    err_console.print("delivering webhooks")
    run_deliveries(engine, stop)


# ---- reoptimize -----------------------------------------------------------------------------


def _execute_in_child(url: str, run_id: int, policy: str, workers: int) -> str:
    """One lab's run, in its own process (spawned: nothing inherited but arguments)."""
    from scheduler.db import make_engine
    from scheduler.worker import default_worker_id, run_to_completion

    logging.basicConfig(level=logging.WARNING)
    engine = make_engine(url)
    try:
        return run_to_completion(
            engine, run_id, f"reoptimize:{default_worker_id()}", policy=policy, workers=workers
        )
    finally:
        engine.dispose()


def _has_pending_work(session: Session, lab: Lab) -> bool:
    """Whether a full run of ``lab`` could change anything: a job left to plan, or a published
    schedule still holding work (a run then clears what no longer waits)."""
    from sqlalchemy import select

    from models import Assignment, Case, Device, Job
    from scheduler.planning.loading.rows import ACTIVE_JOB_STATUSES
    from scheduler.planning.publish import current_version

    waiting = session.scalar(
        select(Job.id)
        .join(Device, Device.id == Job.device_id)
        .join(Case, Case.id == Device.case_id)
        .where(Job.lab_id == lab.id, Case.status == "open", Job.status.in_(ACTIVE_JOB_STATUSES))
        .limit(1)
    )
    if waiting is not None:
        return True
    version = current_version(session, lab)
    if version is None:
        return False
    held = session.scalar(
        select(Assignment.id).where(Assignment.schedule_version_id == version.id).limit(1)
    )
    return held is not None


def reoptimize(
    lab: Annotated[
        list[str] | None, typer.Option("--lab", help="A lab code (repeat for several).")
    ] = None,
    all_labs: Annotated[bool, typer.Option("--all-labs", help="Every lab.")] = False,
    publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="Publish each lab's new schedule.")
    ] = False,
    time_limit: Annotated[
        int | None,
        typer.Option(min=1, max=3600, help="Seconds per lab (default: the lab's setting)."),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(min=1, max=64, help="Labs solved at once (default: cores).")
    ] = None,
    policy: Annotated[Policy, typer.Option(help="Optimizer or a dispatch baseline.")] = (
        Policy.cpsat
    ),
    via_workers: Annotated[
        bool,
        typer.Option(
            "--via-workers",
            help="Queue the runs and wait while `labq worker` processes (on any host sharing "
            "the database) solve them, instead of solving them here.",
        ),
    ] = False,
    wait: Annotated[
        int,
        typer.Option(
            min=1,
            max=7 * 24 * 3600,
            help="With --via-workers: seconds to wait for the workers; runs not finished by "
            "then are reported as failed (they stay queued).",
        ),
    ] = 6 * 3600,
    fmt: Annotated[
        Format,
        typer.Option("--format", help="The summary: table (plain columns when piped), json, csv."),
    ] = Format.table,
) -> None:
    """Re-optimize labs (the nightly run): one full solve per lab, labs in parallel.

    A lab with nothing to plan and nothing published to clear is skipped (no run is queued).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy import select

    from models import Lab, ScheduleVersion, SolveRun
    from scheduler.db import get_engine, session_scope
    from scheduler.errors import DomainError
    from scheduler.planning.runs import FINISHED, queue_run
    from scheduler.services.labs import get_lab
    from scheduler.settings import get_settings
    from scheduler.worker import requeue_stale

    if bool(lab) == all_labs:
        raise _fail("name labs with --lab L (repeatable) or use --all-labs", 2)
    if via_workers and (policy != Policy.cpsat or jobs is not None):
        raise _fail(
            "with --via-workers each worker's own --policy applies and every worker "
            "takes a lab: --policy and --jobs are for solving here",
            2,
        )
    engine = get_engine()
    codes: list[str] = []
    try:
        with session_scope(engine) as session:
            if all_labs:
                labs = list(session.scalars(select(Lab).order_by(Lab.code)))
            else:
                labs = [get_lab(session, code) for code in dict.fromkeys(lab or [])]
            if not labs:
                raise DomainError("there are no labs to re-optimize")
            codes = [row.code for row in labs]
            runs = {
                row.code: queue_run(
                    session,
                    row,
                    actor="cli:reoptimize",
                    mode="full",
                    auto_publish=publish,
                    time_limit_seconds=time_limit,
                    reason="nightly re-optimization",
                ).run.id
                for row in labs
                if _has_pending_work(session, row)
            }
    except DomainError as exc:
        raise _fail(exc.detail) from None

    started = time.perf_counter()
    outcome: dict[str, str] = {}
    futures: dict[str, Future[str]] = {}
    pool: ProcessPoolExecutor | None = None
    if runs and not via_workers:
        import multiprocessing

        cores = os.cpu_count() or 1
        parallel = min(len(runs), jobs or cores)
        solver_workers = max(1, cores // parallel)
        url = get_settings().database_url
        pool = ProcessPoolExecutor(
            max_workers=parallel, mp_context=multiprocessing.get_context("spawn")
        )
        futures = {
            code: pool.submit(_execute_in_child, url, run_id, policy.value, solver_workers)
            for code, run_id in runs.items()
        }
    elif runs:
        err_console.print(
            f"queued {len(runs)} run(s); waiting for `labq worker` processes to solve them"
        )
    deadline = time.monotonic() + wait
    try:
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=err_console,
        ) as progress:
            tasks = {}
            for code in codes:
                if code in runs:
                    tasks[code] = progress.add_task(code, total=1.0, status="queued")
                else:
                    skipped = progress.add_task(code, total=1, status="skipped: no pending work")
                    progress.update(skipped, completed=1)  # a finished bar: its clock stops
            finished: set[str] = set()
            while len(finished) < len(runs):
                for code, future in futures.items():
                    if code not in outcome and future.done():
                        try:
                            outcome[code] = future.result()
                        except Exception as exc:  # the child died: its run will go stale
                            outcome[code] = f"failed ({type(exc).__name__})"
                if via_workers:
                    requeue_stale(engine)  # a dead worker's run goes back to the queue
                with session_scope(engine, read_only=True) as session:
                    for code, run_id in runs.items():
                        run = session.get(SolveRun, run_id)
                        if run is None:
                            continue
                        done = run.status in FINISHED
                        status = run.status
                        if run.status == "running" and run.worker_id:
                            status = f"running on {run.worker_id}"
                        progress.update(
                            tasks[code], completed=1.0 if done else run.progress, status=status
                        )
                        if done if via_workers else code in outcome:
                            finished.add(code)
                if via_workers and time.monotonic() > deadline:
                    break
                if len(finished) < len(runs):
                    time.sleep(0.3)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)

    columns = (
        "lab",
        "status",
        "scheduled",
        "left for later",
        "P1 on time",
        "P2 on time",
        "weighted tardiness",
        "gap",
        "published",
    )
    rows: list[list[Cell]] = []
    title = f"re-optimization of {len(codes)} lab(s) in {time.perf_counter() - started:.1f} s"
    failed: list[str] = []
    left_out: list[str] = []
    with session_scope(engine) as session:
        for code in codes:
            if code not in runs:
                rows.append([code, "skipped", 0, 0, *[None] * 4, "unchanged"])
                continue
            run_id = runs[code]
            run = session.get(SolveRun, run_id)
            assert run is not None
            if run.status not in FINISHED:
                failed.append(code)
                rows.append([code, f"still {run.status}", *[None] * 6, "kept previous"])
                err_console.print(
                    f"[red]{escape(code)}[/red]: run {run_id} did not finish within {wait} s "
                    "(--wait); it is left to the workers"
                )
                continue
            version = session.scalar(
                select(ScheduleVersion)
                .where(ScheduleVersion.solve_run_id == run_id)
                .order_by(ScheduleVersion.id.desc())
            )
            if run.status != "succeeded" or version is None:
                failed.append(code)
                rows.append([code, run.status, *[None] * 6, "kept previous"])
                if run.error:
                    err_console.print(f"[red]{escape(code)}[/red]: {escape(run.error)}")
                continue
            k: dict[str, Any] = version.kpis
            left_out.extend(f"{code}: {record}" for record in k.get("unplannable", []))
            rows.append(
                [
                    code,
                    "succeeded",
                    k.get("scheduled"),
                    k.get("unscheduled"),
                    _percent(k.get("p1_on_time")),
                    _percent(k.get("p2_on_time")),
                    k.get("weighted_tardiness"),
                    _percent(k.get("gap")),
                    f"version {version.id}" if version.is_current else "no",
                ]
            )
    # Piped to a cron log the table is plain columns, never cut to 80 characters.
    emit(console, columns, rows, fmt, title=title if fmt == Format.table else None)
    if left_out:
        console.print(f"{len(left_out)} stored record(s) cannot be planned and were left out:")
        for line in left_out:
            console.print(f"  {escape(line)}", soft_wrap=True)
    if failed:
        raise _fail(
            f"re-optimization failed for lab(s): {', '.join(failed)}; "
            "they keep their published schedules"
        )


# ---- demo -----------------------------------------------------------------------------------


def demo_solve(time_limit: int = 20, gantt_path: Path | None = None) -> None:
    """Solve and publish the seeded demo lab, print its summary, write the Gantt page."""
    from scheduler.db import get_engine
    from scheduler.planning.demo import solve_and_publish_demo

    console.print(f"  solving the demo lab ({time_limit} s, CP-SAT from the best dispatch plan)...")
    result = solve_and_publish_demo(get_engine(), time_limit=time_limit)
    if result.status != "succeeded":
        raise _fail(f"the demo solve {result.status}: {result.error or 'no detail'}")
    show_demo(result, console)
    path = gantt_path or Path.cwd() / GANTT_FILE
    if result.gantt_html is not None:
        path.write_text(result.gantt_html, encoding="utf-8")
        console.print(f"  Gantt chart written to [cyan]{escape(str(path))}[/cyan]")


def show_demo(result: DemoResult, out: Console) -> None:
    k = result.kpis
    out.print(
        f"  published schedule version [cyan]{result.version_id}[/cyan] (run {result.run_id}, "
        f"{result.seconds:.1f} s): {k.get('scheduled')} jobs scheduled, "
        f"{k.get('unscheduled')} left for later with a forecast and a reason; verified: "
        "every hard rule holds"
    )
    levels = k.get("start_on_time_by_level", {})
    late_cases = k.get("late_cases_by_level", {})
    tz = ZoneInfo(result.timezone)
    for code in ("P1", "P2"):
        figures = levels.get(code)
        if not figures:
            continue
        line = f"  {code}: {figures['on_time']} of {figures['cases']} waiting cases start on target"
        late = [_late_case(item, tz) for item in late_cases.get(code, [])]
        out.print(line + (f"; late: {'; '.join(late)}" if late else ""))
    if not any(levels.get(code) for code in ("P1", "P2")):
        out.print("  no P1/P2 cases waiting")
    jobs = k.get("jobs_on_time_by_level", {})
    total = sum(f["jobs"] for f in jobs.values())
    past_due = sum(f["jobs"] - f["on_time"] for f in jobs.values())
    out.print(
        f"  {past_due} of {total} open jobs are expected to end after their due time or have "
        f"no expected date; optimality gap {_percent(k.get('gap'))} (the plan's cost against "
        "our lower bound on any plan's)"
    )
    capacity = k.get("capacity")
    if capacity:
        out.print(f"  [bold]Bottleneck[/bold]: {escape(capacity['sentence'])}")

    agenda = Table(title=f"Next working days per examiner ({result.timezone})", show_lines=False)
    agenda.add_column("examiner")
    agenda.add_column("day")
    agenda.add_column("work (local time, references only)")
    for ref in sorted(result.agenda):
        name = result.examiner_names.get(ref, "")
        for day, items in sorted(result.agenda[ref].items()):
            text = "; ".join(
                f"{i.start}-{i.end} {i.stage} {i.job.rsplit('/', 1)[0]} ({i.priority})"
                + (f" exp {i.exposure_minutes}m" if i.exposure_minutes else "")
                for i in items
            )
            agenda.add_row(f"{ref} {escape(name)}", f"{day:%a %d %b}", escape(text))
    out.print(agenda)

    backlog = Table(title="Backlog by priority (expected dates from the schedule and forecast)")
    for column in ("priority", "cases", "open jobs", "started in horizon", "median finish"):
        backlog.add_column(column)
    backlog.add_column("latest finish")
    for level in result.backlog.get("levels", []):
        if not level["cases"]:
            continue
        median, latest = level["expected_finish_median"], level["expected_finish_latest"]
        backlog.add_row(
            level["priority"],
            str(level["cases"]),
            str(level["open_jobs"]),
            str(level["cases_started_in_horizon"]),
            f"{median:%Y-%m-%d}" if median else "-",
            f"{latest:%Y-%m-%d}" if latest else "-",
        )
    out.print(backlog)

    exposure = Table(title="Exposure per examiner: planned + already logged vs caps (minutes)")
    for column in ("examiner", "worst day", "daily cap", "worst week", "weekly cap", "takes"):
        exposure.add_column(column)
    for ref, e in sorted(k.get("exposure", {}).items()):
        worst_week = max((w["planned"] + w["logged"] for w in e.get("weeks", [])), default=0)
        exposure.add_row(
            ref,
            str(e["max_day"]),
            "none" if e["daily_cap"] is None else str(e["daily_cap"]),
            str(worst_week),
            "none" if e["weekly_cap"] is None else str(e["weekly_cap"]),
            _severities(e["max_severity"]),
        )
    out.print(exposure)
    out.print(
        "  Severity of the material in a review: 1 mild, 2 moderate, 3 most severe (0: none). "
        "'takes' is what an examiner may review: 'severity 1-2' opted out of the most severe."
    )
