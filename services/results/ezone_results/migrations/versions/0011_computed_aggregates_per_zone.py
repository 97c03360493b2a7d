"""figures computed from a zone's student rows are kept per zone, apart from the state's published figures

Until now a review wrote its school's figures over the state's row of the school's code, so one zone's results could
change the figures every other zone compared with (and the state's own). Computed rows move to their own table, keyed
by zone; a computed row whose code more than one zone's school held is dropped (which zone's it was is not known):
the school's next review computes it again. A state row a computed one had overwritten is gone: load the state's file
again to restore it.

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_FIGURES = ("school_name", "n_tested", "proficiency_rate", "average_scaled_score", "median_growth_percentile",
            "participation_rate")
_KEY = ("school_code", "school_year", "subject", "subgroup")
# The directory's codes as the state's files write them (review/engine.state_code).
_STATE_CODE = "CASE WHEN s.code ~ '^[0-9]{1,8}$' THEN lpad(s.code, 8, '0') ELSE s.code END"


def upgrade() -> None:
    op.create_table(
        "computed_aggregates",
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("school_code", sa.Text(), nullable=False),
        sa.Column("school_year", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("subgroup", sa.Text(), nullable=False),
        sa.Column("school_name", sa.Text(), nullable=False),
        sa.Column("n_tested", sa.Integer(), nullable=True),
        sa.Column("proficiency_rate", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("average_scaled_score", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("median_growth_percentile", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("participation_rate", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("zone_id", *_KEY, name=op.f("pk_computed_aggregates")),
        schema="results",
    )
    op.create_index("ix_computed_aggregates_group", "computed_aggregates",
                    ["zone_id", "school_year", "subject", "subgroup"], schema="results",
                    postgresql_include=["school_code", "average_scaled_score"])
    columns = ", ".join((*_KEY, *_FIGURES))
    op.execute(f"""
        INSERT INTO results.computed_aggregates (zone_id, {columns})
        SELECT owner.zone_id, {", ".join(f"a.{name}" for name in (*_KEY, *_FIGURES))}
        FROM results.school_aggregates a
        JOIN (SELECT {_STATE_CODE} AS code, min(s.zone_id) AS zone_id FROM results.schools s
              GROUP BY 1 HAVING count(*) = 1) owner ON owner.code = a.school_code
        WHERE a.source = 'computed'""")
    op.execute("DELETE FROM results.school_aggregates WHERE source = 'computed'")


def downgrade() -> None:
    columns = ", ".join((*_KEY, *_FIGURES))
    # Back over the state's rows, as the reviews once wrote them (one zone's per code: the latest).
    op.execute(f"""
        INSERT INTO results.school_aggregates ({columns}, source)
        SELECT DISTINCT ON ({", ".join(_KEY)}) {columns}, 'computed' FROM results.computed_aggregates
        ORDER BY {", ".join(_KEY)}, updated_at DESC
        ON CONFLICT ({", ".join(_KEY)}) DO UPDATE SET
            {", ".join(f"{name} = EXCLUDED.{name}" for name in _FIGURES)}, source = 'computed', batch_id = NULL""")
    op.drop_index("ix_computed_aggregates_group", table_name="computed_aggregates", schema="results")
    op.drop_table("computed_aggregates", schema="results")
