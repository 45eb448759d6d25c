"""Checking commands of the `labq` CLI: ``verify`` a plan, ``replay`` recorded snapshots.

Both work on files only, never on the database. Exit codes: 0 when everything holds, 1 when a plan
breaks a rule (or a replay differs from its record), 2 for a file that is not a snapshot or plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from api.cli_tables import Format, emit

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_BROKEN = 1
EXIT_MALFORMED = 2


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_plan)
    app.command("replay")(replay)


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


FormatOption = Annotated[
    Format, typer.Option("--format", help="table (plain columns when piped), json or csv.")
]


def verify_plan(
    snapshot_file: Annotated[
        Path, typer.Argument(metavar="SNAPSHOT.json", help="The labq.snapshot/1 file solved.")
    ],
    plan_file: Annotated[
        Path, typer.Argument(metavar="PLAN.json", help="A labq.plan/1 file from any engine.")
    ],
    fmt: FormatOption = Format.table,
) -> None:
    """Check a plan against its snapshot with the independent verifier: every broken hard rule is
    listed (exit 1), none means the plan is valid (exit 0)."""
    from scheduler.core.objective import plan_objective
    from scheduler.core.plan import PlanError, load_plan
    from scheduler.core.snapshot import SnapshotError, load_snapshot, snapshot_warnings
    from scheduler.core.verify import verify

    try:
        snapshot = load_snapshot(snapshot_file)
    except SnapshotError as exc:
        raise _fail(f"malformed snapshot: {exc}", EXIT_MALFORMED) from None
    try:
        plan = load_plan(plan_file)
    except PlanError as exc:
        raise _fail(f"malformed plan: {exc}", EXIT_MALFORMED) from None
    rows: list[list[str | int | None]] = [[v.rule, v.job, v.detail] for v in verify(snapshot, plan)]
    if plan.objective is not None and not rows:
        # The rules hold; the stated objective must also be what the plan costs.
        cost = plan_objective(snapshot, plan.assignments, plan.unscheduled)[0]
        if cost != plan.objective:
            rows.append(
                ["objective", None, f"the plan states {plan.objective:,}; it costs {cost:,}"]
            )
    warnings = snapshot_warnings(snapshot)
    if fmt != Format.table:
        if fmt == Format.json:
            document = {
                "valid": not rows,
                "violations": [{"rule": r, "job": j, "detail": d} for r, j, d in rows],
                "warnings": [
                    {"code": w.code, "field": w.field, "detail": w.detail} for w in warnings
                ],
            }
            console.print(json.dumps(document, indent=1), markup=False, highlight=False)
        else:
            emit(console, ("rule", "job", "detail"), rows, fmt)
        if rows:
            raise typer.Exit(EXIT_BROKEN)
        return
    for w in warnings:
        console.print(f"warning {escape(w.field)}: {escape(w.detail)}")
    if not rows:
        console.print(
            f"valid: every hard rule holds ({len(plan.assignments)} assignments, "
            f"{len(plan.unscheduled)} unscheduled, {len(snapshot.jobs)} jobs in "
            f"{escape(snapshot.lab)})"
        )
        return
    emit(console, ("rule", "job", "detail"), rows, fmt)
    raise _fail(f"the plan breaks {len(rows)} rule(s)", EXIT_BROKEN)


def replay(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="A folder of NAME.snapshot.json files, each with NAME.plan.json or "
            "NAME.expected.json recorded next to it.",
        ),
    ],
    time_limit: Annotated[float, typer.Option(min=0.1, help="Seconds per solve.")] = 10.0,
    workers: Annotated[
        int, typer.Option(min=1, help="CP-SAT threads (1: the same plan on any machine).")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    record: Annotated[
        bool,
        typer.Option(
            "--record", help="Write NAME.plan.json for a snapshot that has no record yet."
        ),
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Solve every snapshot in a folder again, verify each plan, and list each key figure that
    differs from the plan recorded next to it (exit 1 if any plan breaks a rule or differs)."""
    from scheduler.replay import replay_one, snapshots_in

    if not directory.is_dir():
        raise _fail(f"not a folder: {directory}", EXIT_MALFORMED)
    paths = snapshots_in(directory)
    if not paths:
        raise _fail(f"no *.snapshot.json files in {directory}", EXIT_MALFORMED)
    results = []
    for path in paths:
        if fmt == Format.table:
            err_console.print(f"replaying {escape(path.name)} ...")
        results.append(
            replay_one(path, time_limit=time_limit, workers=workers, seed=seed, record=record)
        )

    rows: list[list[str | int | None]] = []
    for r in results:
        if r.error is not None:
            rows.append([r.name, "error", None, None, r.error])
        for v in r.violations:
            rows.append([r.name, f"rule {v.rule}", None, None, f"{v.job or ''} {v.detail}".strip()])
        for v in r.recorded_violations:
            rows.append(
                [r.name, f"recorded: rule {v.rule}", None, None, f"{v.job or ''} {v.detail}"]
            )
        for key, before, after in r.differences:
            change = None
            if isinstance(before, int) and isinstance(after, int):
                change = f"{after - before:+,}"
            rows.append([r.name, key, before, after, change])
    columns = ("snapshot", "figure", "recorded", "replayed", "change")
    if fmt != Format.table:
        emit(console, columns, rows, fmt)
    else:
        for r in results:
            if r.error is not None:
                verdict = "[red]error[/red]"
            elif r.violations:
                verdict = f"[red]breaks {len(r.violations)} rule(s)[/red]"
            elif r.recorded is None:
                verdict = "verified; no recorded plan to compare" + (
                    f" (recorded {escape(r.written)})" if r.written else ""
                )
            elif r.differences or r.recorded_violations:
                verdict = (
                    f"verified; [yellow]{len(r.differences)} figure(s) differ from "
                    f"{escape(r.recorded)}[/yellow]"
                )
            else:
                verdict = f"verified; same figures as {escape(r.recorded)}"
            console.print(f"{escape(r.name)}: {r.jobs} jobs, {r.seconds:.1f} s, {verdict}")
        if rows:
            emit(console, columns, rows, fmt, title="differences")
    if not all(r.ok for r in results):
        raise typer.Exit(EXIT_BROKEN)
