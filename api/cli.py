"""The `labq` command line: the face supervisors and operators use."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from api import cli_api, cli_check, cli_engine, cli_planning, cli_simulate
from scheduler import continuous, logs
from scheduler.errors import DomainError
from scheduler.settings import get_settings

# Plain help (rich_markup_mode=None, in every group): typer's rich panels label each flag
# `<bool>` and squeeze the columns when the help is piped; click's plain help shows each flag's
# default instead and wraps whole words.
continuous.install()  # the planning layer acts on what the services announce (repairs, pins)

app = typer.Typer(
    help="labq: forensic lab queue scheduler.", no_args_is_help=True, rich_markup_mode=None
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db")
cli_api.register(app)
cli_planning.register(app)
cli_engine.register(app)
cli_check.register(app)
cli_simulate.register(app)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the configured database (LABQ_DATABASE_URL) to the latest schema."""
    from scheduler.migrate import upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    console.print(f"database at {revision}: {_redact(url)}")


@app.command()
def demo(
    time_limit: int = typer.Option(20, min=1, max=600, help="Seconds for the demo solve."),
) -> None:
    """Seed a realistic demo lab, solve and publish its schedule, print a summary and a Gantt."""
    from scheduler.db import session_scope
    from scheduler.demo import seed_demo
    from scheduler.migrate import upgrade

    started = time.perf_counter()
    url = get_settings().database_url
    upgrade(url)
    try:
        with session_scope() as session:
            summary = seed_demo(session)
    except DomainError as exc:
        raise fail(exc.detail) from None
    verb = "seeded" if summary.created else "already seeded, nothing added to"
    console.print(
        f"[bold]labq demo[/bold]: {verb} lab [cyan]{summary.lab}[/cyan] in {_redact(url)}"
    )
    console.print(
        f"  {summary.examiners} examiners, {summary.workstations} workstations, "
        f"{summary.cases} cases, {summary.devices} devices, {summary.jobs} jobs"
    )
    cli_planning.demo_solve(time_limit)
    console.print(f"  done in {time.perf_counter() - started:.1f} s")
    console.print(
        "  Open the console: run [bold]labq serve[/bold], then [cyan]http://127.0.0.1:8000/ui/[/cyan]"
    )


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    try:
        settings = get_settings()
        level, fmt = settings.log_level, settings.log_format
    except ValueError:  # a bad setting: the command that reads it reports it
        level, fmt = "WARNING", "auto"
    logs.configure(level, fmt)  # libraries (httpx, ...) stay at WARNING
    app()
