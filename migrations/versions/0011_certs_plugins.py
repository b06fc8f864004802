"""managed certificates: a DNS-01 provider plugin with its settings, an enabled flag,
and the ARI renewal time

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cert_deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acme_dns_provider', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('acme_dns_settings', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('ari_renew_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ari_next_check', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ari_explanation_url', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cert_deployments', schema=None) as batch_op:
        batch_op.drop_column('ari_explanation_url')
        batch_op.drop_column('ari_next_check')
        batch_op.drop_column('ari_renew_at')
        batch_op.drop_column('enabled')
        batch_op.drop_column('acme_dns_settings')
        batch_op.drop_column('acme_dns_provider')
