"""zones this service knows (from zone.registered) and the events it keeps for zones not known yet: an event naming a
zone that does not exist is never projected

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from ezone_kit.migrations import create_zone_tables_v1, drop_zone_tables_v1

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The zones whose zone.registered this service consumed before it kept them: those its data names.
# (Not review_facts: it keeps reviews of schools not known yet, whatever their zone.) A zone with no row here at the
# upgrade is not known to the catalog: its events wait in parked_events for a zone.registered that already came.
_KNOWN = """SELECT zone_id FROM catalog.schools UNION SELECT zone_id FROM catalog.services
    UNION SELECT zone_id FROM catalog.partners UNION SELECT zone_id FROM catalog.envelopes
    UNION SELECT zone_id FROM catalog.orders"""


def upgrade() -> None:
    create_zone_tables_v1(op, "catalog", _KNOWN)


def downgrade() -> None:
    drop_zone_tables_v1(op, "catalog")
