"""console: users, their passkeys and backup codes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 02:00:00
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=True),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('enrol_digest', sa.String(length=64), nullable=True),
        sa.Column('enrol_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('totp_secret', sa.LargeBinary(), nullable=True),
        sa.Column('totp_confirmed', sa.Boolean(), nullable=False),
        sa.Column('totp_last_step', sa.Integer(), nullable=True),
        sa.Column('webauthn_user_id', sa.String(length=64), nullable=False),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
        sa.UniqueConstraint('name', name=op.f('uq_users_name')),
        sa.UniqueConstraint('enrol_digest', name=op.f('uq_users_enrol_digest')),
    )
    op.create_table(
        'user_passkeys',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.Column('credential_id', sa.String(length=1400), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_user_passkeys_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_passkeys')),
        sa.UniqueConstraint('credential_id', name=op.f('uq_user_passkeys_credential_id')),
    )
    with op.batch_alter_table('user_passkeys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_passkeys_user_id'), ['user_id'], unique=False)
    op.create_table(
        'user_backup_codes',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_user_backup_codes_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_backup_codes')),
        sa.UniqueConstraint('user_id', 'digest', name=op.f('uq_user_backup_codes_user_id')),
    )
    with op.batch_alter_table('user_backup_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_backup_codes_user_id'), ['user_id'],
                              unique=False)


    schedules = sa.table('schedules', sa.column('id', sa.String), sa.column('name', sa.String),
                         sa.column('kind', sa.String), sa.column('params', sa.JSON),
                         sa.column('cron', sa.String), sa.column('interval_seconds', sa.Integer),
                         sa.column('enabled', sa.Boolean), sa.column('created_by', sa.String),
                         sa.column('created_at', sa.DateTime(timezone=True)),
                         sa.column('updated_at', sa.DateTime(timezone=True)),
                         sa.column('total_run_count', sa.Integer))
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)
    op.bulk_insert(schedules, [{
        'id': str(uuid.uuid4()), 'name': 'compliance-evaluate-daily', 'kind': 'compliance.evaluate',
        'params': {}, 'cron': '30 3 * * *', 'interval_seconds': None, 'enabled': True,
        'created_by': 'system', 'created_at': now, 'updated_at': now, 'total_run_count': 0}])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM schedules WHERE name = 'compliance-evaluate-daily'"))
    with op.batch_alter_table('user_backup_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_backup_codes_user_id'))
    op.drop_table('user_backup_codes')
    with op.batch_alter_table('user_passkeys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_passkeys_user_id'))
    op.drop_table('user_passkeys')
    op.drop_table('users')
