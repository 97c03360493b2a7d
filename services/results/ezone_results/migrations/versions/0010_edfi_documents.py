"""Ed-Fi documents: every resource an Ed-Fi client sends is kept as sent; results and enrollments name theirs

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("edfi_change_version", schema="results")))
    change_version = sa.text("nextval('results.edfi_change_version')")
    op.create_table(
        "edfi_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("identity", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("school_id", sa.Uuid(), nullable=True),
        sa.Column("result_key", sa.Text(), nullable=True),
        sa.Column("change_version", sa.BigInteger(), server_default=change_version, nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edfi_documents")),
        sa.UniqueConstraint("zone_id", "resource", "identity", name="uq_edfi_documents_identity"),
        schema="results",
    )
    op.create_index("ix_edfi_documents_listing", "edfi_documents", ["zone_id", "resource", "position"], schema="results")
    op.create_index("ix_edfi_documents_changes", "edfi_documents", ["zone_id", "resource", "change_version"],
                    schema="results")
    op.create_index("ix_edfi_documents_result_key", "edfi_documents", ["zone_id", "result_key"], schema="results",
                    postgresql_where=sa.text("result_key IS NOT NULL"))
    op.create_table(
        "edfi_deletes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("identity", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("school_id", sa.Uuid(), nullable=True),
        sa.Column("change_version", sa.BigInteger(), server_default=change_version, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("change_version", name=op.f("pk_edfi_deletes")),
        schema="results",
    )
    op.create_index("ix_edfi_deletes_changes", "edfi_deletes", ["zone_id", "resource", "change_version"],
                    schema="results")
    op.create_table(
        "edfi_seeded_zones",
        sa.Column("zone_id", sa.Text(), nullable=False),
        sa.Column("seeded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("zone_id", name=op.f("pk_edfi_seeded_zones")),
        schema="results",
    )
    op.add_column("student_results", sa.Column("assessment_category", sa.Text(), nullable=True), schema="results")
    op.add_column("student_results", sa.Column("edfi_document_id", sa.Uuid(), nullable=True), schema="results")
    op.create_index("ix_student_results_edfi_document", "student_results", ["edfi_document_id"], unique=True,
                    schema="results")
    op.alter_column("student_results", "grade", existing_type=sa.Text(), nullable=True, schema="results")
    op.add_column("enrollments", sa.Column("edfi_document_id", sa.Uuid(), nullable=True), schema="results")
    op.create_index("ix_enrollments_edfi_document", "enrollments", ["edfi_document_id"], unique=True, schema="results")


def downgrade() -> None:
    op.drop_index("ix_enrollments_edfi_document", table_name="enrollments", schema="results")
    op.drop_column("enrollments", "edfi_document_id", schema="results")
    op.execute("DELETE FROM results.student_results WHERE grade IS NULL")
    op.alter_column("student_results", "grade", existing_type=sa.Text(), nullable=False, schema="results")
    op.drop_index("ix_student_results_edfi_document", table_name="student_results", schema="results")
    op.drop_column("student_results", "edfi_document_id", schema="results")
    op.drop_column("student_results", "assessment_category", schema="results")
    op.drop_table("edfi_seeded_zones", schema="results")
    op.drop_index("ix_edfi_deletes_changes", table_name="edfi_deletes", schema="results")
    op.drop_table("edfi_deletes", schema="results")
    op.drop_index("ix_edfi_documents_result_key", table_name="edfi_documents", schema="results")
    op.drop_index("ix_edfi_documents_changes", table_name="edfi_documents", schema="results")
    op.drop_index("ix_edfi_documents_listing", table_name="edfi_documents", schema="results")
    op.drop_table("edfi_documents", schema="results")
    op.execute(sa.schema.DropSequence(sa.Sequence("edfi_change_version", schema="results")))
