"""Alembic, shared: each service's migrations/env.py is one call to `run_env`, and the kit's own
tables (outbox, inbox, audit log) are created by one call in a service's first migration."""

from __future__ import annotations

import asyncio

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from .db import NAMING_CONVENTION, outbox_notify_channel, service_metadata

KIT_TABLES = ("outbox", "inbox", "audit_log")
VERSION_TABLE = "alembic_version"


def create_kit_tables_v1(op, schema: str) -> None:  # noqa: ANN001 - alembic's op proxy
    """Create the kit's tables (version 1) in the service's schema, and the trigger that wakes the relay.

    It builds the kit tables as the kit defines them now, so on a new database later kit steps find
    their work done: every kit step is idempotent (IF NOT EXISTS), and a service's later migration
    that calls one brings an older database to the same state.
    """
    metadata = service_metadata(schema)
    metadata.create_all(op.get_bind(), tables=[metadata.tables[f"{schema}.{name}"] for name in KIT_TABLES])
    channel = outbox_notify_channel(schema)
    op.execute(
        f"""
        CREATE FUNCTION {schema}.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$;
        """
    )
    # One notification per statement, not per row: a 10,000-event batch wakes the relay once.
    op.execute(
        f"CREATE TRIGGER outbox_inserted AFTER INSERT ON {schema}.outbox"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_outbox()"
    )


def create_idempotency_keys_v1(op, schema: str) -> None:  # noqa: ANN001
    """The kit's Idempotency-Key store (see ezone_kit.idempotency)."""
    metadata = service_metadata(schema)
    metadata.create_all(op.get_bind(), tables=[metadata.tables[f"{schema}.idempotency_keys"]])


def drop_idempotency_keys_v1(op, schema: str) -> None:  # noqa: ANN001
    op.drop_table("idempotency_keys", schema=schema)


def create_outbox_key_index_v1(op, schema: str) -> None:  # noqa: ANN001
    """The relay's ordering check once asked per key for the oldest unsent row: an index over exactly those rows.
    Dropped again by each service's later migration (`drop_outbox_key_index_v1`); kept for the steps in between."""
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_outbox_unsent_key ON {schema}.outbox (key, seq) WHERE sent_at IS NULL")


def drop_outbox_key_index_v1(op, schema: str) -> None:  # noqa: ANN001
    op.execute(f"DROP INDEX IF EXISTS {schema}.ix_outbox_unsent_key")


def create_outbox_positions_v1(op, schema: str) -> None:  # noqa: ANN001
    """Where the broker put each sent event, and what the relay saw acknowledged per partition: how a relay notices a
    broker that lost events (see ezone_kit.relay). Idempotent: a new database has the columns from the first step."""
    op.execute(f"ALTER TABLE {schema}.outbox ADD COLUMN IF NOT EXISTS sent_partition integer,"
               f" ADD COLUMN IF NOT EXISTS sent_offset bigint")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_outbox_sent_position"
               f" ON {schema}.outbox (topic, sent_partition, sent_offset) WHERE sent_offset IS NOT NULL")
    metadata = service_metadata(schema)
    metadata.create_all(op.get_bind(), tables=[metadata.tables[f"{schema}.outbox_partitions"]])


def drop_outbox_positions_v1(op, schema: str) -> None:  # noqa: ANN001
    op.drop_table("outbox_partitions", schema=schema)
    op.execute(f"DROP INDEX IF EXISTS {schema}.ix_outbox_sent_position")
    op.execute(f"ALTER TABLE {schema}.outbox DROP COLUMN IF EXISTS sent_partition, DROP COLUMN IF EXISTS sent_offset")


def drop_kit_tables_v1(op, schema: str) -> None:  # noqa: ANN001
    op.execute(f"DROP TRIGGER IF EXISTS outbox_inserted ON {schema}.outbox")
    op.execute(f"DROP FUNCTION IF EXISTS {schema}.notify_outbox()")
    for name in reversed(KIT_TABLES):
        op.drop_table(name, schema=schema)


def create_school_directory_v1(op, schema: str) -> None:  # noqa: ANN001
    """The school directory projection (see ezone_kit.directory), for services other than plans."""
    from .directory import school_directory_table

    metadata = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    metadata.create_all(op.get_bind(), tables=[school_directory_table(metadata)])


def drop_school_directory_v1(op, schema: str) -> None:  # noqa: ANN001
    op.drop_table("schools", schema=schema)


def create_zone_tables_v1(op, schema: str, known_from: str) -> None:  # noqa: ANN001
    """A projecting service's known zones and the events it keeps for zones not known yet (see ezone_kit.zones).
    `known_from`: a query of the zone ids the service's data shows exist already (their zone.registered was consumed
    before the service kept zones)."""
    from .zones import zone_tables

    metadata = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    known, parked = zone_tables(metadata)
    metadata.create_all(op.get_bind(), tables=[known, parked])
    op.execute(f"INSERT INTO {schema}.known_zones (zone_id, registered_at) SELECT zone_id, now() FROM ({known_from}) z"
               " WHERE zone_id IS NOT NULL ON CONFLICT DO NOTHING")


def drop_zone_tables_v1(op, schema: str) -> None:  # noqa: ANN001
    op.drop_table("parked_events", schema=schema)
    op.drop_table("known_zones", schema=schema)


def alembic_config(package: str, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = schema
    return config


async def upgrade(package: str, database_url: str, schema: str, revision: str = "head") -> None:
    """Run a service's migrations; Alembic is synchronous, so it runs in a worker thread."""
    await asyncio.to_thread(command.upgrade, alembic_config(package, database_url, schema), revision)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    config = context.config
    schema = config.attributes.get("schema") or target_metadata.schema
    database_url = config.attributes["database_url"]

    def run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=VERSION_TABLE,
            version_table_schema=schema,
            # Reflect this service's schema only: it owns nothing else.
            include_schemas=True,
            include_name=lambda name, type_, parent_names: type_ != "schema" or name == schema,
            # The kit's tables come from create_kit_tables_v1, not from each service's autogenerated ops.
            include_object=lambda obj, name, type_, reflected, compare_to: not (
                type_ == "table" and obj.info.get("kit")
            ),
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(database_url, poolclass=pool.NullPool)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(run)
        finally:
            await engine.dispose()

    asyncio.run(main())
