"""``labq simulate``: N days of a generated lab through the real service (docs/architecture.md
§10.1), under labq's optimizer, strict priority dispatch, or both side by side."""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from api.cli_tables import Cell, Format, emit

console = Console()
err_console = Console(stderr=True)
LEVELS = ("P1", "P2", "P3", "P4", "P5")


class Size(StrEnum):
    small = "small"
    medium = "medium"


class SimPolicy(StrEnum):
    cpsat = "cpsat"
    priority = "priority"


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def _pair(a: Any, b: Any, unit: str = "") -> str:
    if a is None and b is None:
        return "-"
    return f"{'-' if a is None else a}{unit} / {'-' if b is None else b}{unit}"


def figure_rows(results: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Cell]]]:
    """The table's rows: one per figure, one column per policy."""
    policies = list(results)
    rows: list[list[Cell]] = []

    def add(name: str, pick: Any) -> None:
        rows.append([name, *(pick(results[p]) for p in policies)])

    for level in LEVELS:
        add(
            f"{level} SLA attainment % (cases)",
            lambda r, lv=level: (
                f"{_pct(r['sla'][lv]['attainment_percent'])} "
                f"({r['sla'][lv]['within_target']}/{r['sla'][lv]['cases']})"
            ),
        )
    for level in LEVELS:
        add(f"{level} finished", lambda r, lv=level: r["finished"][lv])
    for level in LEVELS:
        add(
            f"{level} open: count, median / p90 age (days)",
            lambda r, lv=level: (
                f"{r['open_age'][lv]['open']}: "
                + _pair(r["open_age"][lv]["median_days"], r["open_age"][lv]["p90_days"])
            ),
        )
    add("exposure cap breaches", lambda r: r["exposure"]["breaches"])
    add(
        "weekly planned exposure max / mean (min)",
        lambda r: _pair(r["exposure"]["weekly_planned_max"], r["exposure"]["weekly_planned_mean"]),
    )
    add(
        "nightly churn, next 3 days, mean / max %",
        lambda r: _pair(r["stability"]["mean_percent"], r["stability"]["max_percent"]),
    )
    add(
        "forecast error median / p90 (working days)",
        lambda r: (
            _pair(
                r["forecast_error"]["median_working_days"], r["forecast_error"]["p90_working_days"]
            )
            + f" ({r['forecast_error']['cases']} cases)"
        ),
    )
    add("API errors", lambda r: r["api"]["errors"])
    add("runs failed / held back", lambda r: _pair(r["runs"]["failed"], r["runs"]["held_back"]))
    add(
        "open jobs neither scheduled nor explained",
        lambda r: r["invariants"]["open_jobs_missing"] + r["invariants"]["left_out_without_reason"],
    )
    for mode in ("full", "repair"):
        add(
            f"{mode} solve median / max (s)",
            lambda r, m=mode: _pair(
                r["timings"]["solve_seconds"].get(m, {}).get("median"),
                r["timings"]["solve_seconds"].get(m, {}).get("max"),
            ),
        )
    add("wall time (s)", lambda r: r["timings"]["wall_seconds"])
    return ["figure", *policies], rows


def verdicts(results: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's targets against the figures, one line each (printed, never asserted)."""
    lines: list[str] = []
    labq = results.get("cpsat")
    if labq is None:
        return lines
    baseline = results.get("priority")
    if baseline is not None:
        worse = [
            f"{lv} {labq['sla'][lv]['attainment_percent']} < "
            f"{baseline['sla'][lv]['attainment_percent']}"
            for lv in LEVELS
            if labq["sla"][lv]["attainment_percent"] is not None
            and baseline["sla"][lv]["attainment_percent"] is not None
            and labq["sla"][lv]["attainment_percent"] < baseline["sla"][lv]["attainment_percent"]
        ]
        lines.append(
            "SLA attainment of labq >= priority dispatch at every level: "
            + ("met" if not worse else "missed (" + ", ".join(worse) + ")")
        )
    urgent = [
        f"{lv} {labq['sla'][lv]['attainment_percent']}"
        for lv in ("P1", "P2")
        if labq["sla"][lv]["attainment_percent"] is not None
    ]
    low = [u for u in urgent if float(u.split()[1]) < 95]
    lines.append(
        "P1/P2 attainment >= 95 %: "
        + ("no case due" if not urgent else "met" if not low else f"missed ({', '.join(low)})")
        + (f" [{', '.join(urgent)}]" if urgent else "")
    )
    lines.append(f"exposure cap breaches 0: {_met(labq['exposure']['breaches'] == 0)} "
                 f"({labq['exposure']['breaches']})")  # fmt: skip
    lines.append(f"API errors 0: {_met(labq['api']['errors'] == 0)} ({labq['api']['errors']})")
    median = labq["forecast_error"]["median_working_days"]
    lines.append(
        "forecast error median <= 2 working days: "
        + ("no case" if median is None else f"{_met(median <= 2)} ({median})")
    )
    churn = labq["stability"]["max_percent"]
    lines.append(
        "nightly churn of the next three days <= 10 %: "
        + (
            "no night"
            if churn is None
            else f"{_met(churn <= 10)} (worst night {churn} %, "
            f"mean {labq['stability']['mean_percent']} %)"
        )  # fmt: skip
    )
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def simulate(
    size: Annotated[Size, typer.Option(help="The generated lab: small or medium.")] = Size.small,
    days: Annotated[int, typer.Option(min=1, max=366, help="Calendar days to simulate.")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Fixes the lab and its events.")] = 1,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="CP-SAT workers per solve (1: reproducible).")
    ] = 1,
    policy: Annotated[
        SimPolicy, typer.Option(help="labq's optimizer or strict priority dispatch.")
    ] = SimPolicy.cpsat,
    compare: Annotated[
        bool, typer.Option("--compare", help="Run both policies on the same events.")
    ] = False,
    time_limit: Annotated[
        int, typer.Option(min=1, max=3600, help="Seconds of each nightly run (repairs: 4).")
    ] = 20,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write every figure as JSON to this file.")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="An empty database to simulate in (default: a temporary SQLite file); never "
            "LABQ_DATABASE_URL, so a simulation cannot touch a lab's real data.",
        ),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="The table: table (plain when piped), json, csv.")
    ] = Format.table,
) -> None:
    """Simulate N days of a generated lab through the real service on a controlled clock.

    Cases arrive by a priority mix, devices follow, examiners press :start and :done (late
    sometimes, work taking longer or shorter than estimated), fall sick, cases escalate through
    links, flags and :escalate, exposure is logged; repair runs and the nightly run are solved
    by a worker. Prints SLA attainment, open-case ages, exposure, stability, forecast error, API
    errors and solve times per policy.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from scheduler.simulate.driver import SimConfig
    from scheduler.simulate.driver import simulate as run_simulation

    policies = [SimPolicy.cpsat, SimPolicy.priority] if compare else [policy]
    results: dict[str, dict[str, Any]] = {}
    # The service's own warnings (a version held back, a placement not kept) are counted and
    # listed by the simulation; printed one by one they would bury the progress bars.
    quiet = [logging.getLogger(name) for name in ("scheduler", "api", "api.access")]
    levels = [logger.level for logger in quiet]
    with Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[at]}"),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        tasks = {p: progress.add_task(p.value, total=1.0, at="waiting") for p in policies}
        for p in policies:
            config = SimConfig(
                size=size.value,
                days=days,
                seed=seed,
                policy=p.value,
                workers=workers,
                time_limit=time_limit,
                database_url=database_url,
            )

            def report(fraction: float, at: str, task: Any = tasks[p]) -> None:
                progress.update(task, completed=fraction, at=at)

            for logger in quiet:
                logger.setLevel(logging.ERROR)
            progress.reset(tasks[p], total=1.0, at="starting")
            try:
                results[p.value] = run_simulation(config, progress=report)
            finally:
                for logger, level in zip(quiet, levels, strict=True):
                    logger.setLevel(level)
    columns, rows = figure_rows(results)
    title = f"labq simulate: {size.value} lab, {days} days, seed {seed}, {workers} worker(s)"
    emit(console, columns, rows, fmt, title=title if fmt == Format.table else None)
    for line in verdicts(results):
        console.print(line, soft_wrap=True, markup=False)
    if out is not None:
        out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        err_console.print(f"figures written to {out}")
    for name, result in results.items():
        for line in result["runs"]["first_held_back"][:3] + result["runs"]["first_failed"][:3]:
            err_console.print(f"{name}: {line}", soft_wrap=True, markup=False)
        for error in result["api"]["first_errors"][:3]:
            err_console.print(f"{name}: API error {error}", soft_wrap=True, markup=False)
