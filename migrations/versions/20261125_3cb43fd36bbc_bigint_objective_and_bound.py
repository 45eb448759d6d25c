"""bigint objective and bound: weighted objectives exceed 32 bits on PostgreSQL

SQLite's INTEGER already holds 64 bits, and rebuilding its tables in batch mode would cascade-delete
the rows that reference them, so only PostgreSQL is altered (the models use a SQLite variant).

Revision ID: 3cb43fd36bbc
Revises: 5bcff95be6a6
Create Date: 2026-11-25 02:38:47.359528
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3cb43fd36bbc"
down_revision: str | None = "5bcff95be6a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("schedule_version", "objective"),
    ("schedule_version", "bound"),
    ("solve_run", "objective"),
    ("solve_run", "bound"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in COLUMNS:
        op.alter_column(
            table, column, existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=True
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in COLUMNS:
        op.alter_column(
            table, column, existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=True
        )
