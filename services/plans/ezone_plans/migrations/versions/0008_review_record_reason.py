"""a review record keeps the review's reason sentence (review.completed's `reason`): a tier change says why each
subject had the status that moved it

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("review_records", sa.Column("reason", sa.Text(), nullable=True), schema="plans")


def downgrade() -> None:
    op.drop_column("review_records", "reason", schema="plans")
