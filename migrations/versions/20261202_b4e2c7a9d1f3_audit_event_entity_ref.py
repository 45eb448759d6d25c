"""audit events keep the entity's external reference, so the trail names it after deletion

Revision ID: b4e2c7a9d1f3
Revises: 9a353781be91
Create Date: 2026-12-02 17:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b4e2c7a9d1f3"
down_revision: str | None = "9a353781be91"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("entity_ref", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("entity_ref")
