"""a review request keeps the trace context of each cause (the `traceparent`/`tracestate` of the results.posted outbox
row, or of whatever asked), so the review continues the first cause's trace and links the others

Revision ID: 0015
Revises: 0014
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# As written in their day: ResultsPosted.ce_type, the review worker's NOTIFY channel, and how many causes a request
# keeps (a burst coalesced into one review links at most these; OpenTelemetry keeps 128 links a span by default).
RESULTS_POSTED = "org.ezone.results.results.posted.v1"
REVIEW_CHANNEL = "results_review_requested"
MAX_TRACE_CONTEXTS = 32


def _queue_function(trace_contexts: bool) -> str:
    columns, values, merged = "", "", ""
    if trace_contexts:
        columns = ", trace_contexts"
        values = (", coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object('traceparent', traceparent,"
                  " 'tracestate', tracestate)) ORDER BY seq) FILTER (WHERE traceparent IS NOT NULL), '[]')")
        merged = (f", trace_contexts = CASE WHEN jsonb_array_length(r.trace_contexts) < {MAX_TRACE_CONTEXTS}"
                  " THEN r.trace_contexts || excluded.trace_contexts ELSE r.trace_contexts END")
    return f"""
        CREATE OR REPLACE FUNCTION results.queue_reviews_of_posted_results() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO results.review_requests AS r
                (school_id, school_year, subject, zone_id, batch_ids, reason{columns})
            SELECT CAST(payload ->> 'school_id' AS uuid), payload ->> 'school_year', payload ->> 'subject',
                   min(payload ->> 'zone_id'), jsonb_agg(payload -> 'batch_id' ORDER BY seq), 'results'{values}
            FROM posted WHERE ce_type = '{RESULTS_POSTED}'
            GROUP BY 1, 2, 3
            ON CONFLICT (school_id, school_year, subject)
            DO UPDATE SET batch_ids = r.batch_ids || excluded.batch_ids{merged};
            IF FOUND THEN
                PERFORM pg_notify('{REVIEW_CHANNEL}', '');
            END IF;
            RETURN NULL;
        END $$;
    """


def upgrade() -> None:
    op.add_column("review_requests", sa.Column("trace_contexts", postgresql.JSONB(astext_type=sa.Text()),
                                               server_default=sa.text("'[]'::jsonb"), nullable=False), schema="results")
    op.execute(_queue_function(trace_contexts=True))


def downgrade() -> None:
    op.execute(_queue_function(trace_contexts=False))
    op.drop_column("review_requests", "trace_contexts", schema="results")
