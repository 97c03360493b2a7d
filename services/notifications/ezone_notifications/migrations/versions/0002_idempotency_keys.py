"""the kit's Idempotency-Key store

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from ezone_kit.migrations import create_idempotency_keys_v1, drop_idempotency_keys_v1

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_keys_v1(op, "notifications")


def downgrade() -> None:
    drop_idempotency_keys_v1(op, "notifications")
