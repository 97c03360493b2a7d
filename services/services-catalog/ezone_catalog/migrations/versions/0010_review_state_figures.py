"""review facts keep the state's all-students figures the review carried: partner evidence compares with the state
when a zone has too few comparable schools

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reviews projected before this carry none: the next review of the year and subject brings them.
    op.add_column("review_facts", sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                  schema="catalog")


def downgrade() -> None:
    op.drop_column("review_facts", "state", schema="catalog")
