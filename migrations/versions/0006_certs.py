"""certificate family: inventory targets, certificates seen (history), alert marks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 01:45:03.407706
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cert_targets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=600), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('sni', sa.String(length=255), nullable=True),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('pins', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_scan_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('last_findings', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cert_targets')),
    sa.UniqueConstraint('key', name=op.f('uq_cert_targets_key'))
    )
    op.create_table('cert_notices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('target_id', sa.String(length=36), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('finding', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['cert_targets.id'], name=op.f('fk_cert_notices_target_id_cert_targets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cert_notices')),
    sa.UniqueConstraint('target_id', 'fingerprint', 'finding', 'severity', name='uq_cert_notice')
    )
    op.create_table('cert_seen',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('target_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('spki_sha256', sa.String(length=44), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('issuer', sa.Text(), nullable=False),
    sa.Column('serial', sa.String(length=80), nullable=False),
    sa.Column('sans', sa.JSON(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_type', sa.String(length=16), nullable=False),
    sa.Column('key_bits', sa.Integer(), nullable=True),
    sa.Column('signature_algorithm', sa.String(length=64), nullable=False),
    sa.Column('days_left', sa.Float(), nullable=False),
    sa.Column('change', sa.String(length=32), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['cert_targets.id'], name=op.f('fk_cert_seen_target_id_cert_targets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cert_seen')),
    sa.UniqueConstraint('target_id', 'fingerprint', 'position', name='uq_cert_seen_target_fp')
    )
    with op.batch_alter_table('cert_seen', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cert_seen_fingerprint'), ['fingerprint'], unique=False)
        batch_op.create_index('ix_cert_seen_target_current', ['target_id', 'current'], unique=False)
    op.create_table('cert_issued',
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('common_name', sa.String(length=255), nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('sans', sa.JSON(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('spki_sha256', sa.String(length=44), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revocation_reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('serial', name=op.f('pk_cert_issued')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_cert_issued_fingerprint'))
    )
    with op.batch_alter_table('cert_issued', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cert_issued_not_after'), ['not_after'], unique=False)
    op.create_table('cert_deployments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('issuer', sa.String(length=16), nullable=False),
    sa.Column('common_name', sa.String(length=255), nullable=False),
    sa.Column('sans', sa.JSON(), nullable=False),
    sa.Column('target_id', sa.String(length=36), nullable=True),
    sa.Column('cert_path', sa.Text(), nullable=False),
    sa.Column('key_path', sa.Text(), nullable=False),
    sa.Column('chain_path', sa.Text(), nullable=True),
    sa.Column('reload_argv', sa.JSON(), nullable=False),
    sa.Column('lifetime_hours', sa.Float(), nullable=False),
    sa.Column('reuse_key', sa.Boolean(), nullable=False),
    sa.Column('acme_challenge', sa.String(length=16), nullable=True),
    sa.Column('acme_webroot', sa.Text(), nullable=True),
    sa.Column('acme_dns_hook', sa.JSON(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_deployed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['cert_targets.id'], name=op.f('fk_cert_deployments_target_id_cert_targets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cert_deployments')),
    sa.UniqueConstraint('name', name=op.f('uq_cert_deployments_name'))
    )
    op.create_table('cert_acme_orders',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('deployment_id', sa.String(length=36), nullable=False),
    sa.Column('order_url', sa.Text(), nullable=False),
    sa.Column('csr_pem', sa.Text(), nullable=False),
    sa.Column('key_path', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['cert_deployments.id'], name=op.f('fk_cert_acme_orders_deployment_id_cert_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cert_acme_orders'))
    )
    with op.batch_alter_table('cert_acme_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cert_acme_orders_deployment_id'), ['deployment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('cert_acme_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cert_acme_orders_deployment_id'))
    op.drop_table('cert_acme_orders')
    op.drop_table('cert_deployments')
    with op.batch_alter_table('cert_issued', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cert_issued_not_after'))
    op.drop_table('cert_issued')
    with op.batch_alter_table('cert_seen', schema=None) as batch_op:
        batch_op.drop_index('ix_cert_seen_target_current')
        batch_op.drop_index(batch_op.f('ix_cert_seen_fingerprint'))

    op.drop_table('cert_seen')
    op.drop_table('cert_notices')
    op.drop_table('cert_targets')
