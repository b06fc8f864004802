"""anomaly rate baselines: their rolling history kept in the database

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 05:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('anomaly_baselines',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('entity', sa.String(length=400), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_anomaly_baselines'))
    )
    with op.batch_alter_table('anomaly_baselines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anomaly_baselines_updated_at'), ['updated_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('anomaly_baselines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anomaly_baselines_updated_at'))
    op.drop_table('anomaly_baselines')
