"""the outbox records where the broker put each sent event, and per partition what the relay saw acknowledged

Revision ID: 0012
Revises: 0011
"""

from alembic import op

from ezone_kit.migrations import create_outbox_positions_v1, drop_outbox_positions_v1

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_positions_v1(op, "results")


def downgrade() -> None:
    drop_outbox_positions_v1(op, "results")
