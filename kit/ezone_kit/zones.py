"""Which zones exist, for consumers: an event naming a zone that does not exist is skipped, never projected.

The plans service owns the zones: its consumer asks its own table (`RegisteredZones`); an event naming a zone it does
not have is skipped and counted. Every other service learns the zones from `zone.registered` (`ProjectedZones`, kept
in its `known_zones`). There an event naming a zone not known yet is skipped and counted too, and kept in
`parked_events`: partitions and topics are consumed independently, so a zone's first events can arrive before its
`zone.registered` does (another partition, a consumer catching up). When the zone's registration arrives, the events
kept for it are handled then, in the order they came, in the same transaction. A zone that never registers never has
its events projected: its kept events are deleted once older than `ezone_parked_event_retention_days`
(`delete_stale_parked`, run by the relay's housekeeping), so an event naming a zone that never comes cannot keep a row
for ever.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ezone_schemas import Event, ZoneRegistered
from ezone_schemas.base import event_class
from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from .bus import Envelope
from .db import KIT_MANAGED


def zone_of(event: Event | None) -> str | None:
    """The zone an event is about, if it is about one (every zone-scoped contract names it `zone_id`)."""
    zone = getattr(event, "zone_id", None)
    return zone if isinstance(zone, str) else None


class KnownZones(Protocol):
    async def known(self, session: AsyncSession, zone_ids: Iterable[str]) -> set[str]:
        """Those of `zone_ids` that exist, as far as this service knows."""


@dataclass(frozen=True)
class RegisteredZones:
    """The registry's own zones (the plans service): what is not there does not exist."""

    ids: Column

    async def known(self, session: AsyncSession, zone_ids: Iterable[str]) -> set[str]:
        return set((await session.execute(select(self.ids).where(self.ids.in_(list(zone_ids))))).scalars())


def zone_tables(metadata: MetaData) -> tuple[Table, Table]:
    """A projecting service's `known_zones` (from zone.registered) and `parked_events` (events of zones not known)."""
    known = Table(
        "known_zones",
        metadata,
        Column("zone_id", Text, primary_key=True),
        Column("registered_at", DateTime(timezone=True), nullable=False),
        info=KIT_MANAGED,
    )
    parked = Table(
        "parked_events",
        metadata,
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        Column("consumer", Text, nullable=False),
        Column("zone_id", Text, nullable=False),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("ce_type", Text, nullable=False),
        Column("envelope", JSONB, nullable=False),  # the record's place and headers
        Column("data", JSONB, nullable=False),
        Column("parked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_parked_events_consumer_zone", "consumer", "zone_id", "seq"),
        info=KIT_MANAGED,
    )
    return known, parked


@dataclass(frozen=True)
class ProjectedZones:
    """The zones a service other than plans has heard of, and the events it keeps until their zone registers."""

    known_zones: Table
    parked_events: Table

    @classmethod
    def of(cls, metadata: MetaData) -> ProjectedZones:
        tables = metadata.tables
        return cls(tables[f"{metadata.schema}.known_zones"], tables[f"{metadata.schema}.parked_events"])

    async def known(self, session: AsyncSession, zone_ids: Iterable[str]) -> set[str]:
        column = self.known_zones.c.zone_id
        return set((await session.execute(select(column).where(column.in_(list(zone_ids))))).scalars())

    async def register(self, session: AsyncSession, event: ZoneRegistered) -> None:
        await session.execute(pg_insert(self.known_zones).on_conflict_do_nothing(),
                              {"zone_id": event.zone_id, "registered_at": event.registered_at})

    async def park(self, session: AsyncSession, consumer: str, envelope: Envelope) -> None:
        assert envelope.data is not None
        await session.execute(pg_insert(self.parked_events).values(
            consumer=consumer, zone_id=zone_of(envelope.data), event_id=envelope.id, ce_type=envelope.type,
            envelope={"source": envelope.source, "time": envelope.time, "key": envelope.key, "topic": envelope.topic,
                      "partition": envelope.partition, "offset": envelope.offset, "headers": envelope.headers},
            data=envelope.data.model_dump(mode="json"),
        ))

    async def take_parked(self, session: AsyncSession, consumer: str, zone_id: str) -> list[Envelope]:
        """The events kept for the zone, oldest first, no longer kept (the caller handles them in its transaction)."""
        rows = await session.execute(text(f"""
            WITH taken AS (DELETE FROM {self.parked_events.fullname} WHERE consumer = :consumer AND zone_id = :zone
                           RETURNING seq, event_id, ce_type, envelope, data)
            SELECT * FROM taken ORDER BY seq"""), {"consumer": consumer, "zone": zone_id})
        return [_envelope(row) for row in rows if event_class(row.ce_type) is not None]


async def delete_stale_parked(conn: AsyncConnection, schema: str, retention_days: float) -> int:
    """Delete the events `schema` has kept longer than `retention_days` for a zone that has not registered; how many.
    A service without `parked_events` (plans, which owns the zones) has none."""
    if (await conn.execute(text("SELECT to_regclass(:table)"), {"table": f"{schema}.parked_events"})).scalar() is None:
        return 0
    result = await conn.execute(
        text(f"DELETE FROM {schema}.parked_events WHERE parked_at < now() - make_interval(secs => :seconds)"),
        {"seconds": retention_days * 86400})
    return result.rowcount or 0


def _envelope(row: Any) -> Envelope:
    place = row.envelope
    model = event_class(row.ce_type)
    assert model is not None
    return Envelope(id=uuid.UUID(str(row.event_id)), type=row.ce_type, source=place["source"], time=place["time"],
                    key=place["key"], topic=place["topic"], partition=place["partition"], offset=place["offset"],
                    headers=place["headers"], data=model.model_validate(row.data))
