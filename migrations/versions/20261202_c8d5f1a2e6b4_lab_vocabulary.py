"""lab vocabulary: the skills, capabilities and stages each lab has defined

Each existing lab is seeded with the terms its stored data already uses, so that upgrading
refuses nothing that is stored: every skill its examiners hold or its jobs need, every capability
its workstations have or its jobs need, and every stage labq plans (until now each lab could use
all five; a lab narrows them through the API).

Revision ID: c8d5f1a2e6b4
Revises: b4e2c7a9d1f3
Create Date: 2026-12-02 20:57:22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "c8d5f1a2e6b4"
down_revision: str | None = "b4e2c7a9d1f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The stages as this revision knows them (models/casework.py may grow; this file must not move).
STAGES = ("unlock", "acquire", "process", "review", "report")
_STAGE_LIST = ", ".join(f"'{s}'" for s in STAGES)

# Every term in use, per lab (UNION drops the repeats).
_IN_USE = (
    "SELECT e.lab_id, 'skill', s.skill FROM examiner_skill s "
    "JOIN examiner e ON e.id = s.examiner_id "
    "UNION SELECT j.lab_id, 'skill', s.skill FROM job_skill s JOIN job j ON j.id = s.job_id "
    "UNION SELECT w.lab_id, 'capability', c.capability FROM workstation_capability c "
    "JOIN workstation w ON w.id = c.workstation_id "
    "UNION SELECT j.lab_id, 'capability', c.capability FROM job_capability c "
    "JOIN job j ON j.id = c.job_id"
)


def upgrade() -> None:
    op.create_table(
        "lab_term",
        sa.Column("lab_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            models.base.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            f"kind <> 'stage' OR term IN ({_STAGE_LIST})", name=op.f("ck_lab_term_stage_planned")
        ),
        sa.CheckConstraint(
            "kind IN ('skill', 'capability', 'stage')", name=op.f("ck_lab_term_kind_valid")
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["lab.id"], name=op.f("fk_lab_term_lab_id_lab"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lab_id", "kind", "term", name=op.f("pk_lab_term")),
    )
    op.execute(f"INSERT INTO lab_term (lab_id, kind, term) {_IN_USE}")
    for stage in STAGES:
        op.execute(
            f"INSERT INTO lab_term (lab_id, kind, term) SELECT id, 'stage', '{stage}' FROM lab"
        )


def downgrade() -> None:
    op.drop_table("lab_term")
