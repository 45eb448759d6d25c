"""API commands of the `labq` CLI: ``keys create|revoke|list`` and ``serve``.

``register(app)`` adds them to the main app. Key commands work on the configured database
(LABQ_DATABASE_URL); ``keys create`` prints the key once, on stdout, and never again.
"""

from __future__ import annotations

import getpass
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from api.cli_tables import Cell, Format, emit

err_console = Console(stderr=True)


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    integration = "integration"
    examiner = "examiner"
    auditor = "auditor"


def register(app: typer.Typer) -> None:
    """Add ``keys create|revoke|list`` and ``serve`` to the main CLI."""
    keys_app = typer.Typer(
        help="API keys: create (shown once), revoke, list.", rich_markup_mode=None
    )
    keys_app.command("create")(create_key)
    keys_app.command("revoke")(revoke_key)
    keys_app.command("list")(list_keys)
    app.add_typer(keys_app, name="keys", no_args_is_help=True)
    app.command("serve")(serve)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return f"cli:{user}"[:64]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def create_key(
    role: Annotated[Role, typer.Option("--role", help="What the key may do.")],
    lab: Annotated[
        str | None, typer.Option("--lab", help="Scope to one lab (default: all labs).")
    ] = None,
    examiner: Annotated[
        str | None, typer.Option("--examiner", help="Examiner keys: the examiner, in --lab.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="What the key is for.")] = "",
) -> None:
    """Create an API key and print it once (it is stored only as a hash)."""
    from sqlalchemy.exc import SQLAlchemyError

    from scheduler.db import session_scope
    from scheduler.errors import DomainError
    from scheduler.services import keys
    from scheduler.services.labs import get_lab
    from scheduler.services.resources import get_examiner

    if examiner and not lab:
        raise _fail("--examiner needs --lab (the examiner's lab)", 2)
    try:
        with session_scope() as session:
            lab_row = get_lab(session, lab) if lab else None
            examiner_row = None
            if examiner and lab_row:
                examiner_row = get_examiner(session, lab_row, examiner)
            new = keys.create_key(
                session,
                actor=_actor(),
                role=role.value,
                name=name or f"{role.value} key",
                lab=lab_row,
                examiner=examiner_row,
            )
            prefix, token = new.key.prefix, new.token
    except DomainError as exc:
        raise _fail(exc.detail) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database not ready ({type(exc).__name__}); run `labq db upgrade`") from None
    scope = f"lab {lab}" if lab else "all labs"
    err_console.print(
        f"created {role.value} key [cyan]{prefix}[/cyan] for {escape(scope)}. "
        "It is shown once; store it now:"
    )
    typer.echo(token)


def revoke_key(prefix: Annotated[str, typer.Argument(help="The key's public prefix.")]) -> None:
    """Revoke a key.

    New processes refuse it at once; a running server (each of its processes) may accept it for
    up to LABQ_KEY_CACHE_SECONDS (5 s) more, until its cached check of the key expires."""
    from sqlalchemy.exc import SQLAlchemyError

    from scheduler.db import session_scope
    from scheduler.errors import DomainError
    from scheduler.services import keys
    from scheduler.settings import get_settings

    try:
        with session_scope() as session:
            keys.revoke_key(session, actor=_actor(), prefix=prefix)
    except DomainError as exc:
        raise _fail(exc.detail) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database not ready ({type(exc).__name__}); run `labq db upgrade`") from None
    cache = get_settings().key_cache_seconds
    err_console.print(
        f"revoked key [cyan]{escape(prefix)}[/cyan]"
        + (
            f"; a running server may accept it for up to {cache:g} s more (LABQ_KEY_CACHE_SECONDS)"
            if cache
            else ""
        )
    )


def list_keys(
    fmt: Annotated[
        Format,
        typer.Option("--format", help="table (plain columns when piped), json or csv."),
    ] = Format.table,
) -> None:
    """List keys (prefix, role, scope, last use); secrets are never shown."""
    from sqlalchemy import select

    from models import ApiKey, Lab
    from scheduler.db import session_scope

    rows: list[list[Cell]] = []
    with session_scope() as session:
        labs = dict(session.execute(select(Lab.id, Lab.code)).all())
        for key in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            rows.append(
                [
                    key.prefix,
                    key.role,
                    labs.get(key.lab_id or 0, "all"),
                    key.name,
                    f"{key.created_at:%Y-%m-%d %H:%M}",
                    f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else None,
                    f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else None,
                ]
            )
    columns = ("prefix", "role", "lab", "name", "created", "last used", "revoked")
    emit(Console(), columns, rows, fmt)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes.")] = 1,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema first.")
    ] = True,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) on the configured database."""
    import uvicorn

    from scheduler.logs import logging_config
    from scheduler.settings import get_settings

    settings = get_settings()
    if migrate:
        from scheduler.migrate import upgrade

        upgrade(settings.database_url)
    # labq's log format in every server process; the app logs each request itself (api.access,
    # with its request id and lab), so uvicorn's own access line is off.
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "log_config": logging_config(settings.log_level, settings.log_format),
        "access_log": False,
    }
    if workers == 1:
        from api.app import create_app

        uvicorn.run(create_app(), **common)
    else:
        uvicorn.run("api.app:create_app", factory=True, workers=workers, **common)
