"""The notifications service's tables (schema `notifications`).

Recipients, rules, the board's projections and preferences are fed by events or set through the API;
alerts and their deliveries are this service's own record. An alert's id is derived from its source event
and recipient, so a redelivered event can never raise a second alert for the same person.
"""

from __future__ import annotations

from ezone_kit.db import service_metadata
from ezone_kit.directory import school_directory_table
from ezone_kit.zones import zone_tables
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = service_metadata("notifications")
schools = school_directory_table(metadata)
known_zones, parked_events = zone_tables(metadata)  # which zones exist (see ezone_kit.zones)

# Who may hear about what: the board (from board.member_changed) and each school's team (school.team_changed).
board_members = Table(
    "board_members",
    metadata,
    Column("member_id", UUID(as_uuid=True), primary_key=True),
    Column("zone_id", Text, nullable=False, index=True),
    Column("subject", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("seat", Integer, nullable=False),
    Column("active_from", Date, nullable=False),
    Column("active_to", Date),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

school_team_members = Table(
    "school_team_members",
    metadata,
    Column("school_id", UUID(as_uuid=True), primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("zone_id", Text, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# The zone's alert rules, as data: which events (and which of their values) alert whom, how urgently.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("zone_id", Text, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("event_type", Text, nullable=False),
    Column("conditions", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("severity", Text, nullable=False),
    Column("audiences", JSONB, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("updated_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("zone_id", "name", name="uq_alert_rules_zone_name"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),  # uuid5 of (source event id, recipient)
    Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),  # the inbox's and the stream's cursor
    Column("zone_id", Text, nullable=False),
    Column("recipient", Text, nullable=False),  # the member's token subject
    Column("audience", Text, nullable=False),  # board | school_team: why this recipient got it
    Column("severity", Text, nullable=False),
    Column("rule_names", JSONB, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("links", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("school_id", UUID(as_uuid=True)),
    Column("source_event_id", UUID(as_uuid=True), nullable=False),
    Column("source_type", Text, nullable=False),
    Column("trace_id", Text),
    # The alert composition's span, which each delivery of the alert continues.
    Column("traceparent", Text),
    Column("tracestate", Text),
    # Alerts of one thread (e.g. one school's reviews of one subject and year): a newer one supersedes older unread ones.
    Column("thread", Text),
    Column("thread_position", BigInteger, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("superseded_at", DateTime(timezone=True)),
    Column("superseded_by_event", UUID(as_uuid=True)),
    Index("ix_alerts_inbox", "zone_id", "recipient", "seq"),
    # Every inbox page counts the unread: few, where the member's history is many.
    Index("ix_alerts_unread", "zone_id", "recipient", postgresql_where=text("read_at IS NULL AND superseded_at IS NULL")),
    Index("ix_alerts_thread", "zone_id", "thread", "thread_position", postgresql_where=text("thread IS NOT NULL")),
)

preferences = Table(
    "preferences",
    metadata,
    Column("zone_id", Text, primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("email", Text),  # null: the token subject, when it is an email address
    # Push channels per severity, e.g. {"critical": ["email", "webhook"], "info": []}; the inbox always gets every alert.
    Column("channels", JSONB, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("quiet_hours_start", Time),
    Column("quiet_hours_end", Time),
    Column("digest", Boolean, nullable=False),
    Column("digest_time", Time, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("zone_id", Text, nullable=False, index=True),
    Column("owner", Text),  # a member's subject; null: the zone's endpoint, which gets one delivery per alerting event
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("severities", JSONB, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("uq_webhook_endpoints_owner_url", webhook_endpoints.c.zone_id, func.coalesce(webhook_endpoints.c.owner, ""),
      webhook_endpoints.c.url, unique=True)

digests = Table(
    "digests",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),  # uuid5 of (zone, recipient, local date): one a day
    Column("zone_id", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("local_date", Date, nullable=False),
    Column("alert_ids", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("zone_id", "recipient", "local_date", name="uq_digests_recipient_day"),
)

# One row per alert (or digest) and push channel. Its id is deterministic, so a receiver can de-duplicate
# a delivery repeated after a crash. `pending` rows are claimed by a lease (next_attempt_at moves forward),
# not by a transaction held open across the network call: a killed process leaves them to be retried.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("zone_id", Text, nullable=False),
    Column("alert_id", UUID(as_uuid=True), index=True),
    Column("digest_id", UUID(as_uuid=True)),
    Column("recipient", Text),  # null for a zone endpoint's delivery
    Column("channel", Text, nullable=False),  # email | webhook
    Column("endpoint_id", UUID(as_uuid=True)),
    Column("address", Text, nullable=False),  # the email address or the URL
    Column("status", Text, nullable=False),  # pending | held_for_digest | sent | failed | cancelled | digested
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("ix_deliveries_held", "zone_id", "recipient", postgresql_where=text("status = 'held_for_digest'")),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("delivery_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", Text, nullable=False),  # sent | failed
    Column("status_code", Integer),
    Column("error", Text),
)

# The board page's projections: each school's newest review per year and subject, approved goals, open plans.
school_reviews = Table(
    "school_reviews",
    metadata,
    Column("school_id", UUID(as_uuid=True), primary_key=True),
    Column("school_year", Text, primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("zone_id", Text, nullable=False, index=True),
    Column("review_id", UUID(as_uuid=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("proficiency_rate", JSONB),  # numbers kept as JSON: null when suppressed
    Column("participation_rate", JSONB),
    Column("flags", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("completed_at", DateTime(timezone=True), nullable=False),
    # Why the status is what it is: the review's reason sentence, then its goals' (none from reviews made before).
    Column("reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
)

plan_goals = Table(
    "plan_goals",
    metadata,
    Column("school_id", UUID(as_uuid=True), primary_key=True),
    Column("school_year", Text, primary_key=True),
    Column("zone_id", Text, nullable=False),
    Column("plan_id", UUID(as_uuid=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("goals", JSONB, nullable=False),
)

open_plans = Table(
    "open_plans",
    metadata,
    Column("plan_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("zone_id", Text, nullable=False, index=True),
    Column("school_id", UUID(as_uuid=True), nullable=False),
    Column("school_year", Text, nullable=False),
    Column("amendment", Boolean, nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("decided", Text),  # null while awaiting a decision; approved | returned
)

plan_votes = Table(
    "plan_votes",
    metadata,
    Column("plan_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("decision", Text, nullable=False),
    Column("cast_at", DateTime(timezone=True), nullable=False),
)
