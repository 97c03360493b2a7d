"""Ed-Fi items are looked up by a referential id (a name-based UUID of zone, resource and natural key) with a unique
index of its own, instead of the unique (zone_id, resource, identity): a lookup on three columns was planned on
another index of (zone_id, resource) while a zone's first load outran the table's statistics, a scan for each key.

Revision ID: 0017
Revises: 0016
"""

import uuid

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# As written in their day (ezone_results/edfi/referential.py).
REFERENTIAL_NAMESPACE = uuid.UUID("6f0c2a8e-1b8e-5d2a-9c1e-ed0f1a5e0001")
BATCH = 5_000


def referential_id(zone_id: str, resource: str, identity: dict) -> uuid.UUID:
    canonical = orjson.dumps(identity, option=orjson.OPT_SORT_KEYS).decode()
    return uuid.uuid5(REFERENTIAL_NAMESPACE, f"{zone_id}\x1f{resource}\x1f{canonical}")


def upgrade() -> None:
    op.add_column("edfi_documents", sa.Column("referential_id", sa.Uuid(), nullable=True), schema="results")
    connection = op.get_bind()
    after = -1
    while True:
        rows = connection.execute(sa.text(
            "SELECT position, zone_id, resource, identity FROM results.edfi_documents WHERE position > :after"
            " ORDER BY position LIMIT :batch"), {"after": after, "batch": BATCH}).all()
        if not rows:
            break
        connection.execute(sa.text(
            "UPDATE results.edfi_documents d SET referential_id = u.ref FROM unnest(CAST(:positions AS bigint[]),"
            " CAST(:refs AS uuid[])) AS u(position, ref) WHERE d.position = u.position"),
            {"positions": [row.position for row in rows],
             "refs": [referential_id(row.zone_id, row.resource, row.identity) for row in rows]})
        after = rows[-1].position
    op.alter_column("edfi_documents", "referential_id", nullable=False, schema="results")
    op.create_unique_constraint("uq_edfi_documents_referential_id", "edfi_documents", ["referential_id"],
                                schema="results")
    op.drop_constraint("uq_edfi_documents_identity", "edfi_documents", schema="results")


def downgrade() -> None:
    op.create_unique_constraint("uq_edfi_documents_identity", "edfi_documents", ["zone_id", "resource", "identity"],
                                schema="results")
    op.drop_constraint("uq_edfi_documents_referential_id", "edfi_documents", schema="results")
    op.drop_column("edfi_documents", "referential_id", schema="results")
