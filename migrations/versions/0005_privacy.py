"""privacy: data subject requests, consent ledger, breach register

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 02:04:15
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('privacy_breaches',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('aware_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('nature', sa.Text(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('subjects_approx', sa.Integer(), nullable=False),
    sa.Column('records_approx', sa.Integer(), nullable=False),
    sa.Column('consequences', sa.Text(), nullable=False),
    sa.Column('measures', sa.Text(), nullable=False),
    sa.Column('dpo_contact', sa.String(length=320), nullable=False),
    sa.Column('high_risk', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('authority_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('subjects_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delay_reason', sa.Text(), nullable=True),
    sa.Column('alerts_raised', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_breaches'))
    )
    op.create_table('privacy_consent_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_consent_head'))
    )
    op.create_table('privacy_consents',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('subject_hash', sa.String(length=80), nullable=False),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('lawful_basis', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_privacy_consents'))
    )
    with op.batch_alter_table('privacy_consents', schema=None) as batch_op:
        batch_op.create_index('ix_privacy_consents_subject_purpose', ['subject_hash', 'purpose'], unique=False)

    op.create_table('privacy_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('identity_hash', sa.String(length=80), nullable=False),
    sa.Column('identity_types', sa.JSON(), nullable=False),
    sa.Column('sealed', sa.Text(), nullable=True),
    sa.Column('submitted_by', sa.String(length=80), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('extended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('extension_reason', sa.Text(), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('code_attempts', sa.Integer(), nullable=False),
    sa.Column('code_sends', sa.JSON(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('bundle_sha256', sa.String(length=64), nullable=True),
    sa.Column('download_hash', sa.String(length=64), nullable=True),
    sa.Column('download_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('downloaded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('warned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_requests'))
    )
    with op.batch_alter_table('privacy_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_requests_identity_hash'), ['identity_hash'], unique=False)
        batch_op.create_index('ix_privacy_requests_status_due', ['status', 'due_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('privacy_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_privacy_requests_status_due')
        batch_op.drop_index(batch_op.f('ix_privacy_requests_identity_hash'))

    op.drop_table('privacy_requests')
    with op.batch_alter_table('privacy_consents', schema=None) as batch_op:
        batch_op.drop_index('ix_privacy_consents_subject_purpose')

    op.drop_table('privacy_consents')
    op.drop_table('privacy_consent_head')
    op.drop_table('privacy_breaches')
