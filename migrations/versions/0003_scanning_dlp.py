"""scanning and DLP: stored files, scan results and findings, scanned paths, DLP scans and findings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:35:55.033180
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dlp_scans',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('scan_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('classification', sa.String(length=16), nullable=True),
    sa.Column('blocked', sa.Boolean(), nullable=False),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.Column('finding_count', sa.Integer(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('submitted_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dlp_scans'))
    )
    with op.batch_alter_table('dlp_scans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dlp_scans_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dlp_scans_scan_id'), ['scan_id'], unique=False)

    op.create_table('scan_results',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=True),
    sa.Column('mime', sa.String(length=128), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('ruleset_version', sa.String(length=64), nullable=True),
    sa.Column('cached', sa.Boolean(), nullable=False),
    sa.Column('cached_from', sa.String(length=36), nullable=True),
    sa.Column('submitted_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_results'))
    )
    with op.batch_alter_table('scan_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_results_job_id'), ['job_id'], unique=False)
        batch_op.create_index('ix_scan_results_sha256_ruleset', ['sha256', 'ruleset_version'], unique=False)

    op.create_table('scanned_paths',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('path_hash', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('scan_id', sa.String(length=36), nullable=True),
    sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scanned_paths')),
    sa.UniqueConstraint('path_hash', name=op.f('uq_scanned_paths_path_hash'))
    )
    op.create_table('stored_files',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('quarantined_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_stored_files'))
    )
    op.create_table('dlp_findings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dlp_scan_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('start', sa.Integer(), nullable=False),
    sa.Column('end', sa.Integer(), nullable=False),
    sa.Column('part', sa.String(length=500), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=True),
    sa.Column('preview', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['dlp_scan_id'], ['dlp_scans.id'], name=op.f('fk_dlp_findings_dlp_scan_id_dlp_scans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dlp_findings'))
    )
    with op.batch_alter_table('dlp_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dlp_findings_dlp_scan_id'), ['dlp_scan_id'], unique=False)

    op.create_table('scan_findings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('scan_id', sa.String(length=36), nullable=False),
    sa.Column('rule_id', sa.String(length=100), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('location', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['scan_id'], ['scan_results.id'], name=op.f('fk_scan_findings_scan_id_scan_results'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_findings'))
    )
    with op.batch_alter_table('scan_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_findings_scan_id'), ['scan_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scan_findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scan_findings_scan_id'))

    op.drop_table('scan_findings')
    with op.batch_alter_table('dlp_findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dlp_findings_dlp_scan_id'))

    op.drop_table('dlp_findings')
    op.drop_table('stored_files')
    op.drop_table('scanned_paths')
    with op.batch_alter_table('scan_results', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_results_sha256_ruleset')
        batch_op.drop_index(batch_op.f('ix_scan_results_job_id'))

    op.drop_table('scan_results')
    with op.batch_alter_table('dlp_scans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dlp_scans_scan_id'))
        batch_op.drop_index(batch_op.f('ix_dlp_scans_job_id'))

    op.drop_table('dlp_scans')
