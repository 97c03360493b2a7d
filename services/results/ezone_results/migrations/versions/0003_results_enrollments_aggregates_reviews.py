"""results, enrollments, aggregates, reviews

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approved_plans',
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('goals', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('school_id', 'school_year', name=op.f('pk_approved_plans')),
    schema='results'
    )
    op.create_table('enrollments',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('student_id', sa.Text(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('grade', sa.Text(), nullable=False),
    sa.Column('entry_date', sa.Date(), nullable=False),
    sa.Column('exit_date', sa.Date(), nullable=True),
    sa.Column('subgroups', sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('batch_id', sa.Uuid(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollments')),
    sa.UniqueConstraint('zone_id', 'student_id', 'school_id', 'entry_date', name='uq_enrollments_natural_key'),
    schema='results'
    )
    op.create_index('ix_enrollments_school_year', 'enrollments', ['school_id', 'school_year'], unique=False, schema='results')
    op.create_table('ingest_batches',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('submitted_by', sa.Text(), nullable=False),
    sa.Column('rows_received', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('rows_inserted', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('rows_updated', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('rows_unchanged', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('rows_rejected', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_batches')),
    schema='results'
    )
    op.create_index(op.f('ix_ingest_batches_zone_id'), 'ingest_batches', ['zone_id'], unique=False, schema='results')
    op.create_table('review_requests',
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('batch_ids', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('school_id', 'school_year', 'subject', name=op.f('pk_review_requests')),
    schema='results'
    )
    op.create_table('reviews',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('metrics', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('goals', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('flags', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=True),
    sa.Column('plan_version', sa.Integer(), nullable=True),
    sa.Column('batch_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews')),
    sa.UniqueConstraint('school_id', 'school_year', 'subject', 'version', name=op.f('uq_reviews_school_id_school_year_subject_version')),
    schema='results'
    )
    op.create_index(op.f('ix_reviews_zone_id'), 'reviews', ['zone_id'], unique=False, schema='results')
    op.create_table('school_aggregates',
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('subgroup', sa.Text(), nullable=False),
    sa.Column('school_name', sa.Text(), nullable=False),
    sa.Column('n_tested', sa.Integer(), nullable=True),
    sa.Column('proficiency_rate', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('average_scaled_score', sa.Numeric(precision=6, scale=2), nullable=True),
    sa.Column('median_growth_percentile', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('participation_rate', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('batch_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('school_code', 'school_year', 'subject', 'subgroup', name=op.f('pk_school_aggregates')),
    schema='results'
    )
    op.create_table('student_results',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('student_id', sa.Text(), nullable=False),
    sa.Column('assessment_namespace', sa.Text(), nullable=False),
    sa.Column('assessment_identifier', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('grade', sa.Text(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('administration_date', sa.Date(), nullable=False),
    sa.Column('scale_score', sa.Numeric(precision=7, scale=2), nullable=True),
    sa.Column('performance_level', sa.Text(), nullable=True),
    sa.Column('proficient', sa.Boolean(), nullable=True),
    sa.Column('growth_percentile', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('not_tested_reason', sa.Text(), nullable=True),
    sa.Column('subgroups', sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('edfi_identifier', sa.Text(), nullable=True),
    sa.Column('batch_id', sa.Uuid(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_student_results')),
    sa.UniqueConstraint('zone_id', 'student_id', 'assessment_namespace', 'assessment_identifier', 'school_year', 'administration_date', name='uq_student_results_natural_key'),
    schema='results'
    )
    op.create_index('ix_student_results_school_year_subject', 'student_results', ['school_id', 'school_year', 'subject'], unique=False, schema='results')
    op.create_table('zone_policies',
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('document', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('zone_id', 'version', name=op.f('pk_zone_policies')),
    schema='results'
    )


def downgrade() -> None:
    op.drop_table('zone_policies', schema='results')
    op.drop_index('ix_student_results_school_year_subject', table_name='student_results', schema='results')
    op.drop_table('student_results', schema='results')
    op.drop_table('school_aggregates', schema='results')
    op.drop_index(op.f('ix_reviews_zone_id'), table_name='reviews', schema='results')
    op.drop_table('reviews', schema='results')
    op.drop_table('review_requests', schema='results')
    op.drop_index(op.f('ix_ingest_batches_zone_id'), table_name='ingest_batches', schema='results')
    op.drop_table('ingest_batches', schema='results')
    op.drop_index('ix_enrollments_school_year', table_name='enrollments', schema='results')
    op.drop_table('enrollments', schema='results')
    op.drop_table('approved_plans', schema='results')
