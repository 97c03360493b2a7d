"""a review keeps why its overall status is what it is (the rule, the numbers it compared, a sentence); goals keep
theirs inside `goals`. Reviews made before have none.

Revision ID: 0014
Revises: 0013
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("reason", postgresql.JSONB(astext_type=sa.Text()), nullable=True), schema="results")


def downgrade() -> None:
    op.drop_column("reviews", "reason", schema="results")
