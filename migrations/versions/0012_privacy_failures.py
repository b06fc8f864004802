"""privacy: write-ahead records of erasure store transactions (exact receipt counts
after a worker is killed between a store's commit and its sub-job's completion)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 05:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'privacy_store_erasures',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('request_id', sa.String(length=36), nullable=False),
        sa.Column('store', sa.String(length=120), nullable=False),
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('sealed', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_store_erasures')),
    )
    with op.batch_alter_table('privacy_store_erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_store_erasures_request_id'), ['request_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('privacy_store_erasures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_store_erasures_request_id'))
    op.drop_table('privacy_store_erasures')
