"""zones this service knows (from zone.registered) and the events it keeps for zones not known yet: an event naming a
zone that does not exist is never projected

Revision ID: 0013
Revises: 0012
"""

from alembic import op

from ezone_kit.migrations import create_zone_tables_v1, drop_zone_tables_v1

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The zones whose zone.registered this service consumed before it kept them: those its data names.
# (Every registered zone has a policy here: version 1 is adopted with the zone.)
_KNOWN = """SELECT zone_id FROM results.zone_policies UNION SELECT zone_id FROM results.schools
    UNION SELECT zone_id FROM results.approved_plans"""


def upgrade() -> None:
    create_zone_tables_v1(op, "results", _KNOWN)


def downgrade() -> None:
    drop_zone_tables_v1(op, "results")
