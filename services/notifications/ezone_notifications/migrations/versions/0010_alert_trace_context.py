"""an alert keeps the trace context of its composition (`traceparent`/`tracestate`): each delivery of it continues that
trace, a digest links the traces of the alerts it carries

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("traceparent", sa.Text(), nullable=True), schema="notifications")
    op.add_column("alerts", sa.Column("tracestate", sa.Text(), nullable=True), schema="notifications")


def downgrade() -> None:
    op.drop_column("alerts", "tracestate", schema="notifications")
    op.drop_column("alerts", "traceparent", schema="notifications")
