"""suppressions: DLP findings marked not sensitive and scan verdicts marked false positives

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'suppressions',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('family', sa.String(length=8), nullable=False),
        sa.Column('detector', sa.String(length=100), nullable=True),
        sa.Column('digest', sa.String(length=64), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('path_pattern', sa.String(length=500), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('origin', sa.String(length=120), nullable=False),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_by', sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    )
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.create_index('ix_suppressions_family_sha256', ['family', 'sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.drop_index('ix_suppressions_family_sha256')
    op.drop_table('suppressions')
