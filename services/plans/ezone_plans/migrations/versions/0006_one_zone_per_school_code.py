"""a state school code belongs to one zone at a time: one school per code (without leading zeros) across zones

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As models.state_code (the migration keeps the expression it was written with): a state's file is matched to schools
# by code without leading zeros.
_STATE_CODE = "ltrim(code, '0')"


def upgrade() -> None:
    shared = op.get_bind().execute(sa.text(f"""
        SELECT {_STATE_CODE} AS state_code,
               string_agg(zone_id || ' ' || id || ' (' || code || ')', ', ' ORDER BY created_at) AS schools
        FROM plans.schools GROUP BY 1 HAVING count(*) > 1 ORDER BY 1""")).all()
    if shared:
        listed = "; ".join(f"{row.state_code}: {row.schools}" for row in shared)
        raise RuntimeError(
            f"{len(shared)} state school code(s) are registered more than once, and a code belongs to one zone: "
            f"{listed}. Give each school that is not the state's school with that code its own code "
            "(UPDATE plans.schools SET code = ... WHERE id = ...), then upgrade again.")
    op.create_index("uq_schools_state_code", "schools", [sa.text(_STATE_CODE)], unique=True, schema="plans")
    # Implied by the one above: a code is unique within a zone because it is unique everywhere.
    op.drop_constraint("uq_schools_zone_id_code", "schools", schema="plans", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint("uq_schools_zone_id_code", "schools", ["zone_id", "code"], schema="plans")
    op.drop_index("uq_schools_state_code", table_name="schools", schema="plans")
