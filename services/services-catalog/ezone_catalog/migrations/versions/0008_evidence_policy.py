"""evidence: the zone policy each zone adopted last (its evidence rules) and each review's all-students participation
rate (a culture measure)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Zones whose policy came before this table existed use the policy's defaults until their next version arrives:
    # the evidence rules are new, so no zone has changed them.
    op.create_table(
        "zone_policies",
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("zone_id", name=op.f("pk_zone_policies")),
        schema="catalog",
    )
    op.add_column("review_facts", sa.Column("participation_rate", sa.Float(), nullable=True), schema="catalog")


def downgrade() -> None:
    op.drop_column("review_facts", "participation_rate", schema="catalog")
    op.drop_table("zone_policies", schema="catalog")
