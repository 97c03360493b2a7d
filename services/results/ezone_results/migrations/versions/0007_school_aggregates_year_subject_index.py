"""school aggregates indexed by year and subject: a review ranks its school among that year's and subject's schools

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_school_aggregates_year_subject", "school_aggregates",
                    ["school_year", "subject", "subgroup", "average_scaled_score"], schema="results")


def downgrade() -> None:
    op.drop_index("ix_school_aggregates_year_subject", table_name="school_aggregates", schema="results")
