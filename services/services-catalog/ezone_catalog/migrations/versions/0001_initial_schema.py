"""initial schema: the kit's tables and the school directory projection

Revision ID: 0001
Revises:
"""

from alembic import op

from ezone_kit.migrations import (
    create_kit_tables_v1,
    create_school_directory_v1,
    drop_kit_tables_v1,
    drop_school_directory_v1,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables_v1(op, "catalog")
    create_school_directory_v1(op, "catalog")


def downgrade() -> None:
    drop_school_directory_v1(op, "catalog")
    drop_kit_tables_v1(op, "catalog")
