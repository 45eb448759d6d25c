"""job started_at and finished_at: when :start and :done were reported

Revision ID: a4c2e8f1b7d3
Revises: d7e3a1b9c5f2
Create Date: 2026-12-03 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "a4c2e8f1b7d3"
down_revision: str | None = "d7e3a1b9c5f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", models.base.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("finished_at", models.base.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("finished_at")
        batch_op.drop_column("started_at")
