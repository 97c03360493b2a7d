"""initial schema

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa

from ezone_kit.migrations import create_kit_tables_v1, drop_kit_tables_v1


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables_v1(op, 'plans')
    op.create_table('zones',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('district', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_zones')),
    schema='plans'
    )
    op.create_table('schools',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('grade_span', sa.Text(), nullable=False),
    sa.Column('enrollment', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['zone_id'], ['plans.zones.id'], name=op.f('fk_schools_zone_id_zones')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schools')),
    sa.UniqueConstraint('zone_id', 'code', name=op.f('uq_schools_zone_id_code')),
    schema='plans'
    )
    op.create_index(op.f('ix_schools_zone_id'), 'schools', ['zone_id'], unique=False, schema='plans')


def downgrade() -> None:
    op.drop_index(op.f('ix_schools_zone_id'), table_name='schools', schema='plans')
    op.drop_table('schools', schema='plans')
    op.drop_table('zones', schema='plans')
    drop_kit_tables_v1(op, 'plans')
