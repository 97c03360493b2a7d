"""the board's school reviews keep the review's reason sentences (review.completed's `reason` and its goals'), so the
page says why a status is what it is without asking the results service

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("school_reviews", sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()),
                                              server_default=sa.text("'[]'::jsonb"), nullable=False),
                  schema="notifications")


def downgrade() -> None:
    op.drop_column("school_reviews", "reasons", schema="notifications")
