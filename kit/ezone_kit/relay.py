"""The outbox relay: publishes committed outbox rows to Kafka, in order per key, at least once.

- Woken by LISTEN/NOTIFY on every outbox insert, with a slow poll as a safety net.
- Claims rows with FOR UPDATE SKIP LOCKED, so any number of relays can run. A relay skips a
  key whose older rows another relay holds, which keeps each school's events in order.
- Marks rows sent only after the broker acknowledged them; while the broker is unreachable it
  backs off and retries. A crash between commit and publish leaves rows unsent, so they go later.
- Keeps sent rows for the retention period: `ezone outbox replay --since` re-publishes them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .bus import OutgoingRecord, Publisher
from .db import asyncpg_dsn, outbox_notify_channel
from .metrics import PlatformMetrics
from .settings import KitSettings

_log = logging.getLogger("ezone.relay")

MAX_BACKOFF_S = 10.0
CLEANUP_EVERY_S = 600.0
DEPTH_EVERY_S = 1.0  # the depth gauge is read every few seconds at most; counting after every wake-up would double the queries
HELD_ELSEWHERE_RETRY_S = 0.02


def relay_application_name(schema: str) -> str:
    """How the relay's connection shows in pg_stat_activity."""
    return f"ezone-relay-{schema}"


class OutboxRelay:
    def __init__(
        self, engine: AsyncEngine, schema: str, publisher: Publisher, settings: KitSettings, metrics: PlatformMetrics | None = None
    ) -> None:
        self._engine = engine
        self._schema = schema
        self._publisher = publisher
        self._settings = settings
        self._wake = asyncio.Event()
        self._connection: asyncpg.Connection | None = None
        self._held_elsewhere = False
        self._metrics = metrics
        self.published = 0
        self.depth = 0
        self._claim = (
            f"""WITH claimed AS MATERIALIZED (
                SELECT id, seq, topic, key, ce_type, ce_source, ce_time, payload::text AS payload,
                       traceparent, tracestate
                FROM {schema}.outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
            ), held_elsewhere AS (
                -- A key is another relay's while an unsent row of it older than our first is locked elsewhere. Such
                -- rows lie below our newest, in one range of the unsent index: about a batch of rows to read, with
                -- no plan per key to choose (stale statistics once made that a scan of every unsent row per key).
                SELECT key FROM (
                    SELECT key, seq, true AS ours FROM claimed
                    UNION ALL
                    SELECT key, seq, false FROM {schema}.outbox
                    WHERE sent_at IS NULL AND seq < (SELECT max(seq) FROM claimed)
                ) below GROUP BY key HAVING min(seq) < min(seq) FILTER (WHERE ours)
            )
            SELECT c.*, c.key IN (SELECT key FROM held_elsewhere) AS held_elsewhere
            FROM claimed c ORDER BY c.seq"""
        )
        self._mark_failed = f"UPDATE {schema}.outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1)"
        self._mark_sent = f"UPDATE {schema}.outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY($1)"

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _connect(self) -> asyncpg.Connection:
        """The relay's own connection, outside the pool: it listens for outbox inserts, and claims and marks rows.
        Plain asyncpg, as the listener always was: a pass through the engine cost ~0.5 ms more of CPU, and a relay
        makes a pass for nearly every committed change."""
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(asyncpg_dsn(self._settings.database_url),
                                                     server_settings={"application_name": relay_application_name(self._schema)})
            await self._connection.add_listener(outbox_notify_channel(self._schema), self._on_notify)
        return self._connection

    async def _close_connection(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await connection.close(timeout=2)
            except Exception:  # noqa: BLE001 - it is being thrown away
                connection.terminate()

    async def run(self) -> None:
        backoff = 0.0
        last_cleanup = 0.0
        depth_counted = float("-inf")
        loop = asyncio.get_running_loop()
        try:
            while True:
                # Cleared before draining: a NOTIFY that arrives during the last pass must wake the next one.
                self._wake.clear()
                try:
                    await self._connect()
                    # A partial batch took every row there was: rows committed since then have notified, so the
                    # next pass is woken for them rather than asking again now and finding nothing.
                    while await self.publish_batch() >= self._settings.ezone_relay_batch_size:
                        pass
                    if loop.time() - depth_counted > DEPTH_EVERY_S:
                        self.depth = await outbox_depth(self._engine, self._schema)
                        depth_counted = loop.time()
                    backoff = 0.0
                    if loop.time() - last_cleanup > CLEANUP_EVERY_S:
                        await self.delete_expired()
                        last_cleanup = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the relay outlives every broker or database outage
                    backoff = min(MAX_BACKOFF_S, max(0.25, backoff * 2))
                    _log.warning("outbox relay for %s: %s; retrying in %.1fs", self._schema, exc, backoff)
                    await self._publisher.reset()
                    if self._connection is not None and self._connection.is_closed():
                        self._connection = None
                    await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                    continue
                # Rows another relay holds are released within a publish round-trip: look again soon.
                wait_s = HELD_ELSEWHERE_RETRY_S if self._held_elsewhere else self._settings.ezone_relay_poll_interval_s
                try:
                    await asyncio.wait_for(self._wake.wait(), wait_s)
                except TimeoutError:
                    pass
        finally:
            await self._close_connection()

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch; return how many rows were published."""
        connection = await self._connect()
        async with connection.transaction():
            rows = await connection.fetch(self._claim, self._settings.ezone_relay_batch_size)
            if not rows:
                self._held_elsewhere = False
                return 0
            claimed = len(rows)
            rows = [row for row in rows if not row["held_elsewhere"]]
            self._held_elsewhere = len(rows) < claimed
            if not rows:
                return 0
            records = [
                OutgoingRecord(
                    id=row["id"],
                    topic=row["topic"],
                    key=row["key"],
                    ce_type=row["ce_type"],
                    ce_source=row["ce_source"],
                    ce_time=row["ce_time"],
                    value=row["payload"].encode(),
                    traceparent=row["traceparent"],
                    tracestate=row["tracestate"],
                )
                for row in rows
            ]
            ids = [r.id for r in records]
            try:
                await self._publisher.publish(records)
            except Exception as exc:
                # Recorded in the claiming transaction: the rows stay unsent and their locks go with the commit.
                await connection.execute(self._mark_failed, ids, f"{type(exc).__name__}: {exc}"[:2000])
                failure = exc
            else:
                failure = None
                await connection.execute(self._mark_sent, ids)
        if failure is not None:
            raise failure
        self.published += len(records)
        if self._metrics is not None:
            self._metrics.count_published(len(records))
        return len(records)

    async def delete_expired(self) -> int:
        """Housekeeping: sent events past their retention, and Idempotency-Keys past theirs."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                text(
                    f"DELETE FROM {self._schema}.outbox WHERE sent_at IS NOT NULL"
                    f" AND sent_at < now() - make_interval(secs => :seconds)"
                ),
                {"seconds": self._settings.ezone_outbox_retention_hours * 3600},
            )
            await conn.execute(
                text(f"DELETE FROM {self._schema}.idempotency_keys WHERE created_at < now() - make_interval(secs => :seconds)"),
                {"seconds": self._settings.ezone_idempotency_retention_hours * 3600},
            )
        return result.rowcount or 0


async def mark_for_replay(engine: AsyncEngine, schema: str, since: datetime) -> int:
    """Queue the retained events sent since `since` (to a broker that lost them) to be published again; consumers
    de-duplicate. By when they were sent, not created: an event replayed to a broker that is lost in turn is sent
    again too."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(f"UPDATE {schema}.outbox SET sent_at = NULL WHERE sent_at >= :since"),
            {"since": since},
        )
    return result.rowcount or 0


async def outbox_depth(engine: AsyncEngine, schema: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL"))).scalar_one()

