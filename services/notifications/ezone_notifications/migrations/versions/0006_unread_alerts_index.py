"""a member's unread alerts indexed apart: every inbox page counts them, and a count over the member's whole history
grows with it (unread alerts stay few: a newer review supersedes the unread older ones)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_unread", "alerts", ["zone_id", "recipient"], schema="notifications",
                    postgresql_where=sa.text("read_at IS NULL AND superseded_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_alerts_unread", table_name="alerts", schema="notifications")
