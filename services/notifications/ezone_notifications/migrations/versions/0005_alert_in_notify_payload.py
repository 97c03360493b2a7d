"""the alerts trigger sends the alert itself, so an open stream pushes it without reading it back

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The fields of the inbox API's alert (alerts.schemas.AlertOut). A NOTIFY payload holds at most 8,000 bytes: an alert
# too long for it is announced by id only, and the stream reads it.
_NOTIFY_WITH_ALERT = """
    CREATE OR REPLACE FUNCTION notifications.notify_alert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        announcement jsonb := jsonb_build_object('id', NEW.id, 'zone', NEW.zone_id, 'recipient', NEW.recipient,
                                                 'op', lower(TG_OP));
        payload text := (announcement || jsonb_build_object('alert', jsonb_build_object(
            'id', NEW.id, 'seq', NEW.seq, 'zone_id', NEW.zone_id, 'recipient', NEW.recipient, 'audience', NEW.audience,
            'severity', NEW.severity, 'title', NEW.title, 'body', NEW.body, 'links', NEW.links,
            'school_id', NEW.school_id, 'source_event_id', NEW.source_event_id, 'source_type', NEW.source_type,
            'trace_id', NEW.trace_id, 'created_at', NEW.created_at, 'read_at', NEW.read_at,
            'acknowledged_at', NEW.acknowledged_at, 'superseded_at', NEW.superseded_at)))::text;
    BEGIN
        IF octet_length(payload) >= 8000 THEN
            payload := announcement::text;
        END IF;
        PERFORM pg_notify('ezone_notifications_alerts', payload);
        RETURN NULL;
    END $$"""

_NOTIFY_ID_ONLY = """
    CREATE OR REPLACE FUNCTION notifications.notify_alert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('ezone_notifications_alerts',
            json_build_object('id', NEW.id, 'zone', NEW.zone_id, 'recipient', NEW.recipient, 'op', lower(TG_OP))::text);
        RETURN NULL;
    END $$"""


def upgrade() -> None:
    op.execute(_NOTIFY_WITH_ALERT)


def downgrade() -> None:
    op.execute(_NOTIFY_ID_ONLY)
