"""a results.posted outbox row queues its review in the same transaction (no round trip through the broker)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As written in their day: ResultsPosted.ce_type and the review worker's NOTIFY channel.
RESULTS_POSTED = "org.ezone.results.results.posted.v1"
REVIEW_CHANNEL = "results_review_requested"


def upgrade() -> None:
    # One statement's rows at once (a transition table): a batch touching many schools queues its requests in one
    # insert, a burst for one key in one request naming every batch, and wakes the worker once, at commit.
    op.execute(f"""
        CREATE FUNCTION results.queue_reviews_of_posted_results() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO results.review_requests AS r (school_id, school_year, subject, zone_id, batch_ids, reason)
            SELECT CAST(payload ->> 'school_id' AS uuid), payload ->> 'school_year', payload ->> 'subject',
                   min(payload ->> 'zone_id'), jsonb_agg(payload -> 'batch_id' ORDER BY seq), 'results'
            FROM posted WHERE ce_type = '{RESULTS_POSTED}'
            GROUP BY 1, 2, 3
            ON CONFLICT (school_id, school_year, subject) DO UPDATE SET batch_ids = r.batch_ids || excluded.batch_ids;
            IF FOUND THEN
                PERFORM pg_notify('{REVIEW_CHANNEL}', '');
            END IF;
            RETURN NULL;
        END $$;
    """)
    op.execute("CREATE TRIGGER results_posted_queues_review AFTER INSERT ON results.outbox REFERENCING NEW TABLE AS posted"
               " FOR EACH STATEMENT EXECUTE FUNCTION results.queue_reviews_of_posted_results()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS results_posted_queues_review ON results.outbox")
    op.execute("DROP FUNCTION IF EXISTS results.queue_reviews_of_posted_results()")
