"""zones this service knows (from zone.registered) and the events it keeps for zones not known yet: an event naming a
zone that does not exist is never projected

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from ezone_kit.migrations import create_zone_tables_v1, drop_zone_tables_v1

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The zones whose zone.registered this service consumed before it kept them: those its data names.
# (Every registered zone has its default alert rules here, seeded on zone.registered.)
_KNOWN = """SELECT zone_id FROM notifications.alert_rules UNION SELECT zone_id FROM notifications.schools
    UNION SELECT zone_id FROM notifications.board_members"""


def upgrade() -> None:
    create_zone_tables_v1(op, "notifications", _KNOWN)


def downgrade() -> None:
    drop_zone_tables_v1(op, "notifications")
