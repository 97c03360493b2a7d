"""the year-and-subject index of school aggregates carries the school code: a review's percentile counts read the
index alone (the statewide row is told apart by its code) once the table's pages are all-visible

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = ["school_year", "subject", "subgroup", "average_scaled_score"]


def upgrade() -> None:
    op.drop_index("ix_school_aggregates_year_subject", table_name="school_aggregates", schema="results")
    op.create_index("ix_school_aggregates_year_subject", "school_aggregates", _COLUMNS, schema="results",
                    postgresql_include=["school_code"])


def downgrade() -> None:
    op.drop_index("ix_school_aggregates_year_subject", table_name="school_aggregates", schema="results")
    op.create_index("ix_school_aggregates_year_subject", "school_aggregates", _COLUMNS, schema="results")
