"""feed tokens: read-only links for calendar apps and browsers (hashed secrets)

Revision ID: f35b899429ae
Revises: 3cb43fd36bbc
Create Date: 2026-12-02 15:54:10.733861
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = 'f35b899429ae'
down_revision: str | None = '3cb43fd36bbc'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feed_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lab_id', sa.Integer(), nullable=False),
    sa.Column('examiner_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('last_used_at', models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', models.base.UtcDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("kind IN ('calendar', 'board')", name=op.f('ck_feed_token_kind_valid')),
    sa.ForeignKeyConstraint(['examiner_id'], ['examiner.id'], name=op.f('fk_feed_token_examiner_id_examiner'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lab_id'], ['lab.id'], name=op.f('fk_feed_token_lab_id_lab'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_token')),
    sa.UniqueConstraint('prefix', name=op.f('uq_feed_token_prefix'))
    )
    with op.batch_alter_table('feed_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_token_lab_id'), ['lab_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('feed_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_token_lab_id'))

    op.drop_table('feed_token')
