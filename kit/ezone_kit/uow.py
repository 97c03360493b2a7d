"""Unit of work: a state change, the events it raised and its audit entries commit together."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ezone_schemas import Event
from sqlalchemy import MetaData, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from .auth import Principal
from .db import json_text
from .idempotency import IdempotencyKeys
from .telemetry import current_trace_headers, current_trace_id


class Outbox:
    """Writes events as outbox rows, inside whatever transaction the session is in."""

    def __init__(self, metadata: MetaData, source: str) -> None:
        self.table = metadata.tables[f"{metadata.schema}.outbox"]
        self.source = source
        self._insert_arrays = text(f"""
            INSERT INTO {metadata.schema}.outbox
                (id, topic, key, ce_type, ce_source, ce_time, payload, traceparent, tracestate)
            SELECT id, topic, key, ce_type, ce_source, ce_time, payload::jsonb, traceparent, tracestate
            FROM unnest(CAST(:ids AS uuid[]), CAST(:topics AS text[]), CAST(:keys AS text[]),
                        CAST(:ce_types AS text[]), CAST(:ce_sources AS text[]), CAST(:ce_times AS timestamptz[]),
                        CAST(:payloads AS text[]), CAST(:traceparents AS text[]), CAST(:tracestates AS text[]))
                WITH ORDINALITY AS r(id, topic, key, ce_type, ce_source, ce_time, payload, traceparent, tracestate, n)
            ORDER BY n  -- in the order given: each row's seq, and so the order a key's events are published in""")

    def rows(self, events: list[Event]) -> list[dict[str, Any]]:
        trace_headers = current_trace_headers()
        now = datetime.now(UTC)
        return [
            {
                "id": uuid.uuid4(),
                "topic": event.topic,
                "key": event.partition_key(),
                "ce_type": event.ce_type,
                "ce_source": self.source,
                "ce_time": now,
                "payload": event.model_dump(mode="json"),
                "traceparent": trace_headers.get("traceparent"),
                "tracestate": trace_headers.get("tracestate"),
            }
            for event in events
        ]

    async def add(self, session: AsyncSession, events: list[Event]) -> list[uuid.UUID]:
        rows = self.rows(events)
        await self.insert_rows(session, rows)
        return [row["id"] for row in rows]

    async def insert_rows(self, session: AsyncSession | AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """All the rows in one statement, as arrays: a list of rows would be executed once a row (and fire the
        table's NOTIFY trigger once a row): an alert's eight events cost eight executions."""
        if rows:
            await session.execute(self._insert_arrays, {
                "ids": [row["id"] for row in rows], "topics": [row["topic"] for row in rows],
                "keys": [row["key"] for row in rows], "ce_types": [row["ce_type"] for row in rows],
                "ce_sources": [row["ce_source"] for row in rows], "ce_times": [row["ce_time"] for row in rows],
                "payloads": [json_text(row["payload"]) for row in rows],
                "traceparents": [row["traceparent"] for row in rows], "tracestates": [row["tracestate"] for row in rows],
            })


class AuditLog:
    def __init__(self, metadata: MetaData) -> None:
        self.table = metadata.tables[f"{metadata.schema}.audit_log"]
        # Built once, the values bound at execution: `.values(...)` made a new statement, and its cache key, each time.
        self._insert = insert(self.table)

    async def record_many(self, session: AsyncSession, entries: Sequence[dict[str, Any]]) -> None:
        if entries:
            await session.execute(self._insert, [self._row(**entry) for entry in entries])

    async def record(self, session: AsyncSession, **entry: Any) -> None:
        await session.execute(self._insert, self._row(**entry))

    @staticmethod
    def _row(*, actor: Principal, action: str, entity: str, entity_id: str, zone_id: str, school_id: str | None = None,
             before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"actor": actor.subject, "actor_role": actor.role, "zone_id": zone_id, "school_id": school_id,
                "action": action, "entity": entity, "entity_id": entity_id, "before": before, "after": after,
                "trace_id": current_trace_id()}


class UnitOfWork:
    """`async with uow: ...; uow.emit(event); await uow.commit()` — nothing is written unless committed."""

    def __init__(self, sessions: async_sessionmaker, outbox: Outbox, audit: AuditLog, idempotency: IdempotencyKeys) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._audit = audit
        self.idempotency = idempotency
        self._events: list[Event] = []
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self._events = []
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.session.rollback()
        await self.session.close()

    def emit(self, *events: Event) -> None:
        self._events.extend(events)

    async def audit(self, **entry: Any) -> None:
        await self._audit.record(self.session, **entry)

    async def audit_many(self, entries: Sequence[dict[str, Any]]) -> None:
        """Several entries in one statement (the keyword arguments of `audit`, each)."""
        await self._audit.record_many(self.session, entries)

    async def commit(self) -> list[uuid.UUID]:
        event_ids = await self._outbox.add(self.session, self._events)
        await self.session.commit()
        self._events = []
        return event_ids
