"""anomaly detection: ingestion checkpoints, ingested batches, the default schedule

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:15:00
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('anomaly_checkpoints',
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('fingerprint', name=op.f('pk_anomaly_checkpoints'))
    )
    op.create_table('anomaly_batches',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=True),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('submitted_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_anomaly_batches'))
    )
    with op.batch_alter_table('anomaly_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anomaly_batches_job_id'), ['job_id'], unique=False)

    # Log ingestion and detection every five minutes is an ordinary, visible schedule row.
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
        'id': str(uuid.uuid4()), 'name': 'anomaly-ingest', 'kind': 'anomaly.ingest',
        'params': {}, 'cron': None, 'interval_seconds': 300, 'enabled': True,
        'created_by': 'system', 'created_at': now, 'updated_at': now, 'total_run_count': 0,
    }])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM schedules WHERE name = 'anomaly-ingest'"))
    with op.batch_alter_table('anomaly_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anomaly_batches_job_id'))
    op.drop_table('anomaly_batches')
    op.drop_table('anomaly_checkpoints')
