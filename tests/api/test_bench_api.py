"""`labq bench api` end to end on a tiny run: its own database, the real server, a few clients."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from api.cli import app
from scheduler.benchmarks.api_reads import percentile

runner = CliRunner()


def test_bench_api_measures_every_read_and_cleans_up(fresh_databases) -> None:
    admin = fresh_databases.pg_admin()
    if admin is None:
        pytest.skip("no PostgreSQL server answers")
    result = runner.invoke(
        app,
        [
            "bench",
            "api",
            "--admin-url",
            admin,
            "--clients",
            "3",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--time-limit",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    for route in ("health", "current", "assignments", "assignments-all", "examiner"):
        row = re.search(rf"^\s+{route}\s+([\d,]+)\s+(\d+)\s", out, re.MULTILINE)
        assert row is not None, (route, out)
        assert int(row.group(1).replace(",", "")) > 0 and row.group(2) == "0", (route, out)
    assert "PostgreSQL 1" in out and "load average" in out and "load generator CPU" in out
    created = re.search(r"created database (labq_apibench_\w+)", out)
    assert created is not None and f"dropped database {created.group(1)}" in out
    engine = create_engine(admin)
    try:
        with engine.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM pg_database WHERE datname = :name"),
                {"name": created.group(1)},
            ).scalar()
    finally:
        engine.dispose()
    assert left == 0


def test_bench_api_refuses_sqlite() -> None:
    result = runner.invoke(app, ["bench", "api", "--database-url", "sqlite:///x.db"])
    assert result.exit_code == 2


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100 and percentile([], 0.99) == 0
    assert percentile([7.0], 0.01) == 7
