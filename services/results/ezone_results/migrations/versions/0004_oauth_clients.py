"""oauth clients

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_clients',
    sa.Column('client_id', sa.Text(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('schools', sa.ARRAY(sa.Uuid()), nullable=False),
    sa.Column('secret_hash', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_oauth_clients')),
    sa.UniqueConstraint('zone_id', 'name', name='uq_oauth_clients_zone_name'),
    schema='results'
    )


def downgrade() -> None:
    op.drop_table('oauth_clients', schema='results')
