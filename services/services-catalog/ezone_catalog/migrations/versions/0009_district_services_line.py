"""budgets: the district-services line (non-optional services of the zone policy's district categories are charged
to it, not to the plan's envelope) and the purchases each envelope was planned for

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The policy's default district categories: no zone had changed them before the line existed.
_TO_DISTRICT_LINE = """UPDATE catalog.orders o SET charged_to = 'district_services' FROM catalog.services s
    WHERE s.id = o.service_id AND o.status = 'assigned'
    AND s.category IN ('facilities', 'payroll', 'transportation', 'food_service')"""


def upgrade() -> None:
    op.add_column("orders", sa.Column("charged_to", sa.Text(), server_default=sa.text("'services'"), nullable=False),
                  schema="catalog")
    op.execute(_TO_DISTRICT_LINE)
    # Envelopes approved before this are known by their total only: their planned purchases arrive with the next
    # plan.approved (an amendment).
    op.add_column("envelopes", sa.Column("planned_services", postgresql.JSONB(astext_type=sa.Text()),
                                         server_default=sa.text("'[]'::jsonb"), nullable=False), schema="catalog")


def downgrade() -> None:
    op.drop_column("envelopes", "planned_services", schema="catalog")
    op.drop_column("orders", "charged_to", schema="catalog")
