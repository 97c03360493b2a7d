"""Database plumbing: one async engine per service, and the kit's own tables in the service's schema.

Each service owns one PostgreSQL schema; the outbox, inbox and audit tables live inside it, so a
service's state and the events it raised commit in one transaction.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    event,
    exc,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from .settings import KitSettings

# Tables the kit defines and migrates itself (create_*_v1 steps), not each service's autogenerate.
KIT_MANAGED = {"kit": True}

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """The metadata of one service: its schema, plus the kit's outbox, inbox and audit tables."""
    metadata = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    Table(
        "outbox",
        metadata,
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("ce_type", Text, nullable=False),
        Column("ce_source", Text, nullable=False),
        Column("ce_time", DateTime(timezone=True), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("traceparent", Text),
        Column("tracestate", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        # Where the broker acknowledged it (while it counts as sent): a broker that lost that offset lost the event.
        Column("sent_partition", Integer),
        Column("sent_offset", BigInteger),
        Index("ix_outbox_unsent", "seq", postgresql_where=text("sent_at IS NULL")),
        Index("ix_outbox_created_at", "created_at"),
        Index("ix_outbox_sent_position", "topic", "sent_partition", "sent_offset",
              postgresql_where=text("sent_offset IS NOT NULL")),
        info=KIT_MANAGED,
    )
    Table(
        # Per partition the relay published to: the broker's cluster id then, and the offset after the last record it
        # acknowledged. A broker with another id, or whose partition ends before that offset, lost records.
        "outbox_partitions",
        metadata,
        Column("topic", Text, primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("cluster_id", Text),
        Column("acked_end_offset", BigInteger, nullable=False),
        info=KIT_MANAGED,
    )
    Table(
        "inbox",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("ce_type", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("trace_id", Text),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        info=KIT_MANAGED,
    )
    Table(
        "audit_log",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor", Text, nullable=False),
        Column("actor_role", Text, nullable=False),
        Column("zone_id", Text, nullable=False),
        Column("school_id", Text),
        Column("action", Text, nullable=False),
        Column("entity", Text, nullable=False),
        Column("entity_id", Text, nullable=False),
        Column("before", JSONB),
        Column("after", JSONB),
        Column("trace_id", Text),
        Index("ix_audit_log_entity", "entity", "entity_id"),
        Index("ix_audit_log_zone_school", "zone_id", "school_id"),
        info=KIT_MANAGED,
    )
    Table(
        "idempotency_keys",
        metadata,
        Column("scope", Text, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("request_digest", Text, nullable=False),
        Column("resource_id", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_idempotency_keys_created_at", "created_at"),
        info=KIT_MANAGED,
    )
    return metadata


def outbox_notify_channel(schema: str) -> str:
    return f"ezone_outbox_{schema}"


# A pooled connection idle longer than this is checked before use.
PING_AFTER_IDLE_S = 1.0


def create_engine(settings: KitSettings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        # Every event's payload and every JSON column goes through these: orjson is several times the stdlib's speed.
        json_serializer=json_text,
        json_deserializer=orjson.loads,
    )
    ping_idle_connections(engine, PING_AFTER_IDLE_S)
    return engine


def json_text(value: Any) -> str:
    # Non-string keys become strings, as the stdlib's json.dumps makes them.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def ping_idle_connections(engine: AsyncEngine, after_idle_s: float) -> None:
    """Check a pooled connection before use only when it sat idle, as after a database restart or an idle
    timeout of something in between. SQLAlchemy's pool_pre_ping checks every checkout, which with asyncpg
    is three round trips (BEGIN, ping, ROLLBACK): more than a small request's own statements. A dead
    connection found here is replaced, with every connection pooled before it, as pre_ping does."""
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:  # noqa: ANN001
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:  # noqa: ANN001
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < after_idle_s:
            return  # a new connection, or one in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error
            raise


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(database_url: str) -> str:
    """The same database as a plain libpq URL, for the relay's LISTEN connection."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
