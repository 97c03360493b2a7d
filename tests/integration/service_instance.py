"""One instance of a service as far as the kit goes, in a process of its own so that a test can SIGKILL it: an outbox
relay and a consumer that records each school's events in the order it handles them.

    python -m tests.integration.service_instance <schema> <topic>    (the settings from the environment)
"""

from __future__ import annotations

import asyncio
import sys

from ezone_kit.bus import Publisher
from ezone_kit.consumer import ConsumerSpec, ConsumerWorker, HandlerContext
from ezone_kit.db import service_metadata
from ezone_kit.relay import OutboxRelay
from ezone_kit.settings import KitSettings
from ezone_kit.uow import Outbox
from ezone_schemas import SchoolRegistered
from sqlalchemy import BigInteger, Column, Identity, Integer, MetaData, Table, Text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

CONSUMER = "ordered"


def handled_table(metadata: MetaData) -> Table:
    """A row per event handled, numbered in the order handled: not idempotent, so an event handled twice shows."""
    return Table("handled", metadata, Column("n", BigInteger, Identity(always=True), primary_key=True),
                 Column("code", Text, nullable=False), Column("seq", Integer, nullable=False))


def school_round(code: str, seq: int) -> str:
    """The school name that carries an event's place in its school's sequence."""
    return f"{code}-{seq}"


async def run(schema: str, topic: str) -> None:
    settings = KitSettings()
    metadata = service_metadata(schema)
    handled = handled_table(metadata)
    engine = create_async_engine(settings.database_url)
    publisher = Publisher(settings)

    async def record(ctx: HandlerContext) -> None:
        code, seq = ctx.event.name.rsplit("-", 1)
        await ctx.session.execute(handled.insert().values(code=code, seq=int(seq)))

    spec = ConsumerSpec(name=CONSUMER, topics=(topic,), handlers={SchoolRegistered: record})
    worker = ConsumerWorker(schema, spec, async_sessionmaker(engine, expire_on_commit=False), Outbox(metadata, "/test"),
                            publisher, settings)
    await asyncio.gather(OutboxRelay(engine, schema, publisher, settings).run(), worker.run())


if __name__ == "__main__":
    asyncio.run(run(*sys.argv[1:]))
