"""run attempts and the lab's time-limit cap

``solve_run_attempt`` keeps each claim of a run (worker, start, end, outcome, reason), so a run
that was re-claimed still shows why its earlier attempts ended. ``lab.max_time_limit_seconds``
caps the time limit a run of the lab may ask for.

SQLite cannot add a table constraint to an existing table without rebuilding it (which would
cascade-delete the rows that reference ``lab``), so there the CHECK is part of the added column.

Revision ID: 7d1e4a9c2b10
Revises: f35b899429ae
Create Date: 2026-12-02 15:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "7d1e4a9c2b10"
down_revision: str | None = "f35b899429ae"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CAP_CHECK = "max_time_limit_seconds BETWEEN 1 AND 3600"


def upgrade() -> None:
    op.create_table(
        "solve_run_attempt",
        sa.Column("solve_run_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("started_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", models.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_solve_run_attempt_attempt_positive")),
        sa.CheckConstraint(
            "outcome IN ('succeeded', 'failed', 'cancelled', 'stale')",
            name=op.f("ck_solve_run_attempt_outcome_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["solve_run_id"],
            ["solve_run.id"],
            name=op.f("fk_solve_run_attempt_solve_run_id_solve_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("solve_run_id", "attempt", name=op.f("pk_solve_run_attempt")),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE lab ADD COLUMN max_time_limit_seconds INTEGER DEFAULT '3600' NOT NULL "
            f"CONSTRAINT ck_lab_max_time_limit_range CHECK ({CAP_CHECK})"
        )
    else:
        op.add_column(
            "lab",
            sa.Column(
                "max_time_limit_seconds", sa.Integer(), server_default="3600", nullable=False
            ),
        )
        op.create_check_constraint(op.f("ck_lab_max_time_limit_range"), "lab", CAP_CHECK)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_lab_max_time_limit_range"), "lab", type_="check")
    op.drop_column("lab", "max_time_limit_seconds")
    op.drop_table("solve_run_attempt")
