"""the relay's ordering check reads one range of the unsent index now: the (key, seq) index goes

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from ezone_kit.migrations import create_outbox_key_index_v1, drop_outbox_key_index_v1

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    drop_outbox_key_index_v1(op, "plans")


def downgrade() -> None:
    create_outbox_key_index_v1(op, "plans")
