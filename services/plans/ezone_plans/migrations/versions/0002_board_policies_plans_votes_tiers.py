"""board, policies, plans, votes, tiers

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('partners',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    schema='plans'
    )
    op.create_index(op.f('ix_partners_zone_id'), 'partners', ['zone_id'], unique=False, schema='plans')
    op.create_table('board_members',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('seat', sa.Integer(), nullable=False),
    sa.Column('appointed_by', sa.Text(), nullable=False),
    sa.Column('active_from', sa.Date(), nullable=False),
    sa.Column('active_to', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['zone_id'], ['plans.zones.id'], name=op.f('fk_board_members_zone_id_zones')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_board_members')),
    sa.UniqueConstraint('zone_id', 'subject', name=op.f('uq_board_members_zone_id_subject')),
    schema='plans'
    )
    op.create_index(op.f('ix_board_members_zone_id'), 'board_members', ['zone_id'], unique=False, schema='plans')
    op.create_table('zone_policies',
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('document', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['zone_id'], ['plans.zones.id'], name=op.f('fk_zone_policies_zone_id_zones')),
    sa.PrimaryKeyConstraint('zone_id', 'version', name=op.f('pk_zone_policies')),
    schema='plans'
    )
    op.create_table('leadership_members',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('elected_on', sa.Date(), nullable=True),
    sa.Column('term_ends', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['plans.schools.id'], name=op.f('fk_leadership_members_school_id_schools')),
    sa.ForeignKeyConstraint(['zone_id'], ['plans.zones.id'], name=op.f('fk_leadership_members_zone_id_zones')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leadership_members')),
    sa.UniqueConstraint('school_id', 'subject', name=op.f('uq_leadership_members_school_id_subject')),
    schema='plans'
    )
    op.create_index(op.f('ix_leadership_members_school_id'), 'leadership_members', ['school_id'], unique=False, schema='plans')
    op.create_index(op.f('ix_leadership_members_zone_id'), 'leadership_members', ['zone_id'], unique=False, schema='plans')
    op.create_table('plans',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['plans.schools.id'], name=op.f('fk_plans_school_id_schools')),
    sa.ForeignKeyConstraint(['zone_id'], ['plans.zones.id'], name=op.f('fk_plans_zone_id_zones')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plans')),
    sa.UniqueConstraint('school_id', 'school_year', name=op.f('uq_plans_school_id_school_year')),
    schema='plans'
    )
    op.create_index(op.f('ix_plans_school_id'), 'plans', ['school_id'], unique=False, schema='plans')
    op.create_index(op.f('ix_plans_zone_id'), 'plans', ['zone_id'], unique=False, schema='plans')
    op.create_table('review_records',
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('review_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['plans.schools.id'], name=op.f('fk_review_records_school_id_schools')),
    sa.PrimaryKeyConstraint('school_id', 'school_year', 'subject', name=op.f('pk_review_records')),
    schema='plans'
    )
    op.create_table('plan_versions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('content', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('amendment', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('automatic', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('submitted_by', sa.Text(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.plans.id'], name=op.f('fk_plan_versions_plan_id_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_versions')),
    sa.UniqueConstraint('plan_id', 'version', name=op.f('uq_plan_versions_plan_id_version')),
    schema='plans'
    )
    op.create_index(op.f('ix_plan_versions_plan_id'), 'plan_versions', ['plan_id'], unique=False, schema='plans')
    op.create_table('votes',
    sa.Column('plan_version_id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('decision', sa.Text(), nullable=False),
    sa.Column('comments', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('cast_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['plans.board_members.id'], name=op.f('fk_votes_member_id_board_members')),
    sa.ForeignKeyConstraint(['plan_version_id'], ['plans.plan_versions.id'], name=op.f('fk_votes_plan_version_id_plan_versions')),
    sa.PrimaryKeyConstraint('plan_version_id', 'member_id', name=op.f('pk_votes')),
    schema='plans'
    )
    op.add_column('schools', sa.Column('tier', sa.Text(), server_default=sa.text("'standard'"), nullable=False), schema='plans')
    op.add_column('schools', sa.Column('tier_reason', sa.Text(), nullable=True), schema='plans')
    op.add_column('schools', sa.Column('tier_since', sa.DateTime(timezone=True), nullable=True), schema='plans')
    op.add_column('zones', sa.Column('fiscal_year_start_month', sa.Integer(), server_default=sa.text('7'), nullable=False), schema='plans')
    op.add_column('zones', sa.Column('school_year_start_month', sa.Integer(), server_default=sa.text('9'), nullable=False), schema='plans')


def downgrade() -> None:
    op.drop_column('zones', 'school_year_start_month', schema='plans')
    op.drop_column('zones', 'fiscal_year_start_month', schema='plans')
    op.drop_column('schools', 'tier_since', schema='plans')
    op.drop_column('schools', 'tier_reason', schema='plans')
    op.drop_column('schools', 'tier', schema='plans')
    op.drop_table('votes', schema='plans')
    op.drop_index(op.f('ix_plan_versions_plan_id'), table_name='plan_versions', schema='plans')
    op.drop_table('plan_versions', schema='plans')
    op.drop_table('review_records', schema='plans')
    op.drop_index(op.f('ix_plans_zone_id'), table_name='plans', schema='plans')
    op.drop_index(op.f('ix_plans_school_id'), table_name='plans', schema='plans')
    op.drop_table('plans', schema='plans')
    op.drop_index(op.f('ix_leadership_members_zone_id'), table_name='leadership_members', schema='plans')
    op.drop_index(op.f('ix_leadership_members_school_id'), table_name='leadership_members', schema='plans')
    op.drop_table('leadership_members', schema='plans')
    op.drop_table('zone_policies', schema='plans')
    op.drop_index(op.f('ix_board_members_zone_id'), table_name='board_members', schema='plans')
    op.drop_table('board_members', schema='plans')
    op.drop_index(op.f('ix_partners_zone_id'), table_name='partners', schema='plans')
    op.drop_table('partners', schema='plans')
