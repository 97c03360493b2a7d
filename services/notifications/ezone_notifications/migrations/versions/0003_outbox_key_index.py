"""the kit's index of unsent outbox rows by key, for the relay's ordering check

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from ezone_kit.migrations import create_outbox_key_index_v1, drop_outbox_key_index_v1

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_key_index_v1(op, "notifications")


def downgrade() -> None:
    drop_outbox_key_index_v1(op, "notifications")
