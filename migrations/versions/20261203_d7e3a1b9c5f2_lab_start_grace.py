"""lab start grace: how long a missed start is taken as started as planned

Revision ID: d7e3a1b9c5f2
Revises: c8d5f1a2e6b4
Create Date: 2026-12-03 12:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d7e3a1b9c5f2"
down_revision: str | None = "c8d5f1a2e6b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


GRACE_CHECK = "start_grace_minutes BETWEEN 0 AND 1440"


def upgrade() -> None:
    # SQLite adds a column with its CHECK in one ALTER (no table rebuild, which would carry the
    # older columns' checks into the new table and stop their own downgrades dropping them).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE lab ADD COLUMN start_grace_minutes INTEGER DEFAULT '60' NOT NULL "
            f"CONSTRAINT ck_lab_start_grace_range CHECK ({GRACE_CHECK})"
        )
    else:
        op.add_column(
            "lab",
            sa.Column("start_grace_minutes", sa.Integer(), server_default="60", nullable=False),
        )
        op.create_check_constraint(op.f("ck_lab_start_grace_range"), "lab", GRACE_CHECK)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_lab_start_grace_range"), "lab", type_="check")
    op.drop_column("lab", "start_grace_minutes")
