"""scan records carry their own error: one scan.file job may scan several files of an upload

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scan_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scan_results', schema=None) as batch_op:
        batch_op.drop_column('error')
