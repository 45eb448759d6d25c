"""what-if previews: a change of the lab on paper, its preview run and the comparison

Revision ID: e5a9c3d7f1b2
Revises: e5a9c3f17b20
Create Date: 2026-12-03 15:04:42.979935
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "e5a9c3d7f1b2"
down_revision: str | None = "e5a9c3f17b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "what_if",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lab_id", sa.Integer(), nullable=False),
        sa.Column("solve_run_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("baseline_version_id", sa.Integer(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column(
            "created_at",
            models.base.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["baseline_version_id"],
            ["schedule_version.id"],
            name=op.f("fk_what_if_baseline_version_id_schedule_version"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["lab.id"], name=op.f("fk_what_if_lab_id_lab"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["solve_run_id"],
            ["solve_run.id"],
            name=op.f("fk_what_if_solve_run_id_solve_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_what_if")),
        sa.UniqueConstraint("solve_run_id", name=op.f("uq_what_if_solve_run_id")),
    )
    with op.batch_alter_table("what_if", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_what_if_lab_id"), ["lab_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("what_if", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_what_if_lab_id"))

    op.drop_table("what_if")
