"""services, partners and vetting, envelopes, orders, review facts, school tiers

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
    op.create_table('envelopes',
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('plan_version', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('school_id', 'school_year', name=op.f('pk_envelopes')),
    schema='catalog'
    )
    op.create_index(op.f('ix_envelopes_zone_id'), 'envelopes', ['zone_id'], unique=False, schema='catalog')
    op.create_table('partners',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('website', sa.Text(), nullable=True),
    sa.Column('contact_email', sa.Text(), nullable=True),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    sa.UniqueConstraint('zone_id', 'name', name=op.f('uq_partners_zone_id_name')),
    schema='catalog'
    )
    op.create_index(op.f('ix_partners_zone_id'), 'partners', ['zone_id'], unique=False, schema='catalog')
    op.create_table('review_facts',
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('review_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('proficiency_rate', sa.Float(), nullable=True),
    sa.Column('median_growth_percentile', sa.Float(), nullable=True),
    sa.Column('goals', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('flags', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('school_id', 'school_year', 'subject', name=op.f('pk_review_facts')),
    schema='catalog'
    )
    op.create_index(op.f('ix_review_facts_zone_id'), 'review_facts', ['zone_id'], unique=False, schema='catalog')
    op.create_table('school_tiers',
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('tier', sa.Text(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('school_id', name=op.f('pk_school_tiers')),
    schema='catalog'
    )
    op.create_index(op.f('ix_school_tiers_zone_id'), 'school_tiers', ['zone_id'], unique=False, schema='catalog')
    op.create_table('partner_vettings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('vetted_by', sa.Text(), nullable=False),
    sa.Column('vetted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('criteria_met', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('evidence', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['catalog.partners.id'], name=op.f('fk_partner_vettings_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_vettings')),
    schema='catalog'
    )
    op.create_index(op.f('ix_partner_vettings_partner_id'), 'partner_vettings', ['partner_id'], unique=False, schema='catalog')
    op.create_table('services',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('category', sa.Text(), nullable=False),
    sa.Column('non_optional', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('unit', sa.Text(), nullable=False),
    sa.Column('unit_label', sa.Text(), nullable=True),
    sa.Column('price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('capacity_per_year', sa.Integer(), nullable=True),
    sa.Column('needs', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('levers', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['catalog.partners.id'], name=op.f('fk_services_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_services')),
    sa.UniqueConstraint('zone_id', 'partner_id', 'name', name=op.f('uq_services_zone_id_partner_id_name'), postgresql_nulls_not_distinct=True),
    schema='catalog'
    )
    op.create_index(op.f('ix_services_partner_id'), 'services', ['partner_id'], unique=False, schema='catalog')
    op.create_index(op.f('ix_services_zone_id'), 'services', ['zone_id'], unique=False, schema='catalog')
    op.create_table('orders',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('school_id', sa.Uuid(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('service_id', sa.Uuid(), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('placed_by', sa.Text(), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.Text(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fulfilled_by', sa.Text(), nullable=True),
    sa.Column('fulfilled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by', sa.Text(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['catalog.services.id'], name=op.f('fk_orders_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    schema='catalog'
    )
    op.create_index(op.f('ix_orders_partner_id'), 'orders', ['partner_id'], unique=False, schema='catalog')
    op.create_index('ix_orders_school_id_school_year', 'orders', ['school_id', 'school_year'], unique=False, schema='catalog')
    op.create_index('ix_orders_service_id_school_year', 'orders', ['service_id', 'school_year'], unique=False, schema='catalog')
    op.create_index(op.f('ix_orders_zone_id'), 'orders', ['zone_id'], unique=False, schema='catalog')
    op.create_index('uq_orders_assignment', 'orders', ['service_id', 'school_id', 'school_year'], unique=True, schema='catalog', postgresql_where=sa.text("status = 'assigned'"))


def downgrade() -> None:
    op.drop_index('uq_orders_assignment', table_name='orders', schema='catalog', postgresql_where=sa.text("status = 'assigned'"))
    op.drop_index(op.f('ix_orders_zone_id'), table_name='orders', schema='catalog')
    op.drop_index('ix_orders_service_id_school_year', table_name='orders', schema='catalog')
    op.drop_index('ix_orders_school_id_school_year', table_name='orders', schema='catalog')
    op.drop_index(op.f('ix_orders_partner_id'), table_name='orders', schema='catalog')
    op.drop_table('orders', schema='catalog')
    op.drop_index(op.f('ix_services_zone_id'), table_name='services', schema='catalog')
    op.drop_index(op.f('ix_services_partner_id'), table_name='services', schema='catalog')
    op.drop_table('services', schema='catalog')
    op.drop_index(op.f('ix_partner_vettings_partner_id'), table_name='partner_vettings', schema='catalog')
    op.drop_table('partner_vettings', schema='catalog')
    op.drop_index(op.f('ix_school_tiers_zone_id'), table_name='school_tiers', schema='catalog')
    op.drop_table('school_tiers', schema='catalog')
    op.drop_index(op.f('ix_review_facts_zone_id'), table_name='review_facts', schema='catalog')
    op.drop_table('review_facts', schema='catalog')
    op.drop_index(op.f('ix_partners_zone_id'), table_name='partners', schema='catalog')
    op.drop_table('partners', schema='catalog')
    op.drop_index(op.f('ix_envelopes_zone_id'), table_name='envelopes', schema='catalog')
    op.drop_table('envelopes', schema='catalog')
