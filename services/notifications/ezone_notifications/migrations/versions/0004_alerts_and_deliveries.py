"""alerts, rules, recipients, preferences, deliveries, board projections

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 22:52:27.540077
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_rules',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('conditions', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('severity', sa.Text(), nullable=False),
    sa.Column('audiences', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('updated_by', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rules')),
    sa.UniqueConstraint('zone_id', 'name', name='uq_alert_rules_zone_name'),
    schema='notifications'
    )
    op.create_index(op.f('ix_alert_rules_zone_id'), 'alert_rules', ['zone_id'], unique=False, schema='notifications')
    op.create_table('alerts',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('audience', sa.Text(), nullable=False),
    sa.Column('severity', sa.Text(), nullable=False),
    sa.Column('rule_names', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('links', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('school_id', sa.UUID(), nullable=True),
    sa.Column('source_event_id', sa.UUID(), nullable=False),
    sa.Column('source_type', sa.Text(), nullable=False),
    sa.Column('trace_id', sa.Text(), nullable=True),
    sa.Column('thread', sa.Text(), nullable=True),
    sa.Column('thread_position', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('superseded_by_event', sa.UUID(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('seq', name=op.f('uq_alerts_seq')),
    schema='notifications'
    )
    op.create_index('ix_alerts_inbox', 'alerts', ['zone_id', 'recipient', 'seq'], unique=False, schema='notifications')
    op.create_index('ix_alerts_thread', 'alerts', ['zone_id', 'thread', 'thread_position'], unique=False, schema='notifications', postgresql_where=sa.text('thread IS NOT NULL'))
    op.create_table('board_members',
    sa.Column('member_id', sa.UUID(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('seat', sa.Integer(), nullable=False),
    sa.Column('active_from', sa.Date(), nullable=False),
    sa.Column('active_to', sa.Date(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_board_members')),
    schema='notifications'
    )
    op.create_index(op.f('ix_board_members_zone_id'), 'board_members', ['zone_id'], unique=False, schema='notifications')
    op.create_table('deliveries',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('alert_id', sa.UUID(), nullable=True),
    sa.Column('digest_id', sa.UUID(), nullable=True),
    sa.Column('recipient', sa.Text(), nullable=True),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('endpoint_id', sa.UUID(), nullable=True),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    schema='notifications'
    )
    op.create_index(op.f('ix_deliveries_alert_id'), 'deliveries', ['alert_id'], unique=False, schema='notifications')
    op.create_index('ix_deliveries_due', 'deliveries', ['next_attempt_at'], unique=False, schema='notifications', postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_deliveries_held', 'deliveries', ['zone_id', 'recipient'], unique=False, schema='notifications', postgresql_where=sa.text("status = 'held_for_digest'"))
    op.create_table('delivery_attempts',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('delivery_id', sa.UUID(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts')),
    schema='notifications'
    )
    op.create_index(op.f('ix_delivery_attempts_delivery_id'), 'delivery_attempts', ['delivery_id'], unique=False, schema='notifications')
    op.create_table('digests',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('local_date', sa.Date(), nullable=False),
    sa.Column('alert_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digests')),
    sa.UniqueConstraint('zone_id', 'recipient', 'local_date', name='uq_digests_recipient_day'),
    schema='notifications'
    )
    op.create_table('open_plans',
    sa.Column('plan_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('school_id', sa.UUID(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('amendment', sa.Boolean(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('plan_id', 'version', name=op.f('pk_open_plans')),
    schema='notifications'
    )
    op.create_index(op.f('ix_open_plans_zone_id'), 'open_plans', ['zone_id'], unique=False, schema='notifications')
    op.create_table('plan_goals',
    sa.Column('school_id', sa.UUID(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('plan_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('goals', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('school_id', 'school_year', name=op.f('pk_plan_goals')),
    schema='notifications'
    )
    op.create_table('plan_votes',
    sa.Column('plan_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('decision', sa.Text(), nullable=False),
    sa.Column('cast_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('plan_id', 'version', 'subject', name=op.f('pk_plan_votes')),
    schema='notifications'
    )
    op.create_table('preferences',
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('channels', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('timezone', sa.Text(), nullable=False),
    sa.Column('quiet_hours_start', sa.Time(), nullable=True),
    sa.Column('quiet_hours_end', sa.Time(), nullable=True),
    sa.Column('digest', sa.Boolean(), nullable=False),
    sa.Column('digest_time', sa.Time(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('zone_id', 'subject', name=op.f('pk_preferences')),
    schema='notifications'
    )
    op.create_table('school_reviews',
    sa.Column('school_id', sa.UUID(), nullable=False),
    sa.Column('school_year', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('review_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('proficiency_rate', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('participation_rate', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('flags', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('school_id', 'school_year', 'subject', name=op.f('pk_school_reviews')),
    schema='notifications'
    )
    op.create_index(op.f('ix_school_reviews_zone_id'), 'school_reviews', ['zone_id'], unique=False, schema='notifications')
    op.create_table('school_team_members',
    sa.Column('school_id', sa.UUID(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('school_id', 'subject', name=op.f('pk_school_team_members')),
    schema='notifications'
    )
    op.create_index(op.f('ix_school_team_members_zone_id'), 'school_team_members', ['zone_id'], unique=False, schema='notifications')
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('zone_id', sa.Text(), nullable=False),
    sa.Column('owner', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('severities', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
    schema='notifications'
    )
    op.create_index(op.f('ix_webhook_endpoints_zone_id'), 'webhook_endpoints', ['zone_id'], unique=False, schema='notifications')
    op.create_index('uq_webhook_endpoints_owner_url', 'webhook_endpoints', ['zone_id', sa.literal_column("coalesce(owner, '')"), 'url'], unique=True, schema='notifications')
    # Open board pages learn of new and changed alerts at commit, not by polling.
    op.execute("""
        CREATE FUNCTION notifications.notify_alert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('ezone_notifications_alerts',
                json_build_object('id', NEW.id, 'zone', NEW.zone_id, 'recipient', NEW.recipient, 'op', lower(TG_OP))::text);
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER alerts_notify AFTER INSERT OR UPDATE ON notifications.alerts"
               " FOR EACH ROW EXECUTE FUNCTION notifications.notify_alert()")
    # The delivery worker wakes when deliveries are queued; once per statement is enough.
    op.execute("""
        CREATE FUNCTION notifications.notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('ezone_notifications_deliveries', '');
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER deliveries_notify AFTER INSERT ON notifications.deliveries"
               " FOR EACH STATEMENT EXECUTE FUNCTION notifications.notify_deliveries()")


def downgrade() -> None:
    op.execute("DROP TRIGGER deliveries_notify ON notifications.deliveries")
    op.execute("DROP FUNCTION notifications.notify_deliveries()")
    op.execute("DROP TRIGGER alerts_notify ON notifications.alerts")
    op.execute("DROP FUNCTION notifications.notify_alert()")
    op.drop_index('uq_webhook_endpoints_owner_url', table_name='webhook_endpoints', schema='notifications')
    op.drop_index(op.f('ix_webhook_endpoints_zone_id'), table_name='webhook_endpoints', schema='notifications')
    op.drop_table('webhook_endpoints', schema='notifications')
    op.drop_index(op.f('ix_school_team_members_zone_id'), table_name='school_team_members', schema='notifications')
    op.drop_table('school_team_members', schema='notifications')
    op.drop_index(op.f('ix_school_reviews_zone_id'), table_name='school_reviews', schema='notifications')
    op.drop_table('school_reviews', schema='notifications')
    op.drop_table('preferences', schema='notifications')
    op.drop_table('plan_votes', schema='notifications')
    op.drop_table('plan_goals', schema='notifications')
    op.drop_index(op.f('ix_open_plans_zone_id'), table_name='open_plans', schema='notifications')
    op.drop_table('open_plans', schema='notifications')
    op.drop_table('digests', schema='notifications')
    op.drop_index(op.f('ix_delivery_attempts_delivery_id'), table_name='delivery_attempts', schema='notifications')
    op.drop_table('delivery_attempts', schema='notifications')
    op.drop_index('ix_deliveries_held', table_name='deliveries', schema='notifications', postgresql_where=sa.text("status = 'held_for_digest'"))
    op.drop_index('ix_deliveries_due', table_name='deliveries', schema='notifications', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index(op.f('ix_deliveries_alert_id'), table_name='deliveries', schema='notifications')
    op.drop_table('deliveries', schema='notifications')
    op.drop_index(op.f('ix_board_members_zone_id'), table_name='board_members', schema='notifications')
    op.drop_table('board_members', schema='notifications')
    op.drop_index('ix_alerts_thread', table_name='alerts', schema='notifications', postgresql_where=sa.text('thread IS NOT NULL'))
    op.drop_index('ix_alerts_inbox', table_name='alerts', schema='notifications')
    op.drop_table('alerts', schema='notifications')
    op.drop_index(op.f('ix_alert_rules_zone_id'), table_name='alert_rules', schema='notifications')
    op.drop_table('alert_rules', schema='notifications')
