"""the audit chain head carries a MAC of its (seq, hash), so a head rewound by hand is caught

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-07 02:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_chain_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_chain_head', schema=None) as batch_op:
        batch_op.drop_column('mac')
