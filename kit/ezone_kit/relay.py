"""The outbox relay: publishes committed outbox rows to Kafka, in order per key, at least once.

- Woken by LISTEN/NOTIFY on every outbox insert, with a slow poll as a safety net.
- Claims rows with FOR UPDATE SKIP LOCKED, so any number of relays can run. A relay skips a
  key whose older rows another relay holds, which keeps each school's events in order.
- Marks rows sent only after the broker acknowledged them; while the broker is unreachable it
  backs off and retries. A crash between commit and publish leaves rows unsent, so they go later.
- Keeps sent rows for the retention period, with where the broker put each one; notices a broker that lost what it
  acknowledged and publishes those events again (any number of times in a row), on Tansu as on Apache Kafka:
  * before publishing, at least every BROKER_CHECK_EVERY_S and after any failure, it compares the broker with what it
    recorded per partition: another cluster id (a new cluster) lost all of it; a partition that ends before the
    offset after the last record acknowledged there, and has no record at that last offset when read (a restarted
    memory-only broker, an unclean leader election), lost everything from its end on;
  * between two checks, a record acknowledged at an offset where an earlier event of ours sits means the partition
    was lost and written again since: every other event recorded on it is published again.
  Consumers skip what they already had (the inbox), so publishing an event twice is harmless; losing one is not.
  `ezone outbox replay --since` re-publishes by hand.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .bus import Acknowledged, BrokerView, OutgoingRecord, Publisher
from .db import asyncpg_dsn, outbox_notify_channel
from .metrics import PlatformMetrics
from .settings import KitSettings
from .zones import delete_stale_parked

_log = logging.getLogger("ezone.relay")

MAX_BACKOFF_S = 10.0
CLEANUP_EVERY_S = 600.0
DEPTH_EVERY_S = 1.0  # the depth gauge is read every few seconds at most; counting after every wake-up would double the queries
HELD_ELSEWHERE_RETRY_S = 0.02
# How stale the relay's last look at the broker may be when it publishes: a check costs two broker round trips, about as
# much as a publish, so not before every batch; a loss in between shows as a reused offset when acknowledged.
BROKER_CHECK_EVERY_S = 1.0


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
        self.republished = 0  # events marked to be published again because the broker lost them
        self.depth = 0
        self._checked_at = float("-inf")
        self._cluster_id: str | None = None
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
        # Marks the batch sent, where the broker put it; raises each partition's acknowledged end; returns the
        # partitions where an earlier event of ours is recorded at an offset just acknowledged again (the CTEs all read
        # the outbox as it was before the statement).
        self._mark_sent = f"""
            WITH acked AS (
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[])
                    AS a(id, topic, partition, "offset")
            ), sent AS (
                UPDATE {schema}.outbox o SET sent_at = now(), attempts = o.attempts + 1, last_error = NULL,
                       sent_partition = a.partition, sent_offset = a."offset"
                FROM acked a WHERE o.id = a.id
            ), ends AS (
                INSERT INTO {schema}.outbox_partitions AS p (topic, partition, cluster_id, acked_end_offset)
                SELECT topic, partition, $5, max("offset") + 1 FROM acked
                GROUP BY topic, partition ORDER BY topic, partition
                ON CONFLICT (topic, partition) DO UPDATE
                SET acked_end_offset = greatest(p.acked_end_offset, excluded.acked_end_offset)
            )
            SELECT DISTINCT o.topic, o.sent_partition AS partition FROM {schema}.outbox o
            JOIN acked a ON o.topic = a.topic AND o.sent_partition = a.partition AND o.sent_offset = a."offset"
            """
        # Serializes the relays of one service while they compare the broker with what they recorded: two relays would
        # each mark again what the other had just published again.
        self._lock_partitions = f"SELECT pg_advisory_xact_lock(hashtext('{schema}.outbox_partitions'))"
        self._partitions = f"SELECT topic, partition, cluster_id, acked_end_offset FROM {schema}.outbox_partitions"
        # The events sent to lost partitions ($1 topic, $2 partition, from offset $3), and those sent before positions
        # were recorded to a topic that lost any: they may be gone, so they are unsent again.
        self._mark_lost = f"""
            WITH lost AS (SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]) AS l(topic, partition, from_offset))
            UPDATE {schema}.outbox o SET sent_at = NULL, sent_partition = NULL, sent_offset = NULL
            WHERE o.sent_at IS NOT NULL AND NOT o.id = ANY($4::uuid[]) AND (
                EXISTS (SELECT 1 FROM lost l WHERE l.topic = o.topic AND l.partition = o.sent_partition
                        AND o.sent_offset >= l.from_offset)
                OR (o.sent_partition IS NULL AND o.topic IN (SELECT topic FROM lost)))
            """
        self._reset_partitions = f"""
            UPDATE {schema}.outbox_partitions p SET cluster_id = $4, acked_end_offset = l.end_offset
            FROM unnest($1::text[], $2::int[], $3::bigint[]) AS l(topic, partition, end_offset)
            WHERE p.topic = l.topic AND p.partition = l.partition
            """

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
                    self._checked_at = float("-inf")  # the broker may have been replaced meanwhile
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
        if asyncio.get_running_loop().time() - self._checked_at >= BROKER_CHECK_EVERY_S:
            await self.republish_lost()
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
                acknowledged = await self._publisher.publish(records)
            except Exception as exc:
                # Recorded in the claiming transaction: the rows stay unsent and their locks go with the commit.
                await connection.execute(self._mark_failed, ids, f"{type(exc).__name__}: {exc}"[:2000])
                failure = exc
            else:
                failure = None
                await self._mark_published(connection, records, acknowledged)
        if failure is not None:
            raise failure
        self.published += len(records)
        if self._metrics is not None:
            self._metrics.count_published(len(records))
        return len(records)

    async def _mark_published(self, connection: asyncpg.Connection, records: list[OutgoingRecord],
                              acknowledged: list[Acknowledged]) -> None:
        ids = [record.id for record in records]
        reused = await connection.fetch(
            self._mark_sent, ids, [record.topic for record in records], [ack.partition for ack in acknowledged],
            [ack.offset for ack in acknowledged], self._cluster_id)
        if not reused:
            return
        # The partition was lost and written again since the last check: which of our events it still holds cannot be
        # told from offsets any more, so every other one recorded there goes again.
        async with connection.transaction():  # a savepoint: the claim's transaction goes on
            await connection.execute(self._lock_partitions)
            ends = {}
            for record, ack in zip(records, acknowledged, strict=True):
                ends[record.topic, ack.partition] = max(ends.get((record.topic, ack.partition), 0), ack.offset + 1)
            lost = [(row["topic"], row["partition"]) for row in reused]
            marked = await self._mark_lost_events(connection, [(topic, partition, 0) for topic, partition in lost], ids)
            await connection.execute(self._reset_partitions, [t for t, _ in lost], [p for _, p in lost],
                                     [ends[key] for key in lost], self._cluster_id)
        _log.warning("outbox relay for %s: the broker acknowledged offsets where earlier events of ours were, on %s: "
                     "it lost those partitions; publishing their %d other event(s) again", self._schema,
                     ", ".join(f"{t}[{p}]" for t, p in lost), marked)
        self._checked_at = float("-inf")  # other partitions may have been lost too

    async def republish_lost(self) -> int:
        """Compare the broker with what was recorded per partition, and mark for publishing again every event it may
        have lost; return how many."""
        connection = await self._connect()
        async with connection.transaction():
            await connection.execute(self._lock_partitions)
            recorded = await connection.fetch(self._partitions)
            view = await self._publisher.broker_view({row["topic"] for row in recorded},
                                                     [(row["topic"], row["partition"]) for row in recorded])
            # An empty partition holds nothing to read: no need to look (a partition of a restarted broker).
            shorter = [(row["topic"], row["partition"], row["acked_end_offset"] - 1) for row in recorded
                       if _ends_before(row, view) and view.end_offsets[row["topic"], row["partition"]] > 0]
            held = await self._publisher.holds(shorter) if shorter else set()
            lost = [loss for row in recorded if (loss := _loss(row, view, held)) is not None]
            marked = 0
            if lost:
                marked = await self._mark_lost_events(connection, lost, [])
                await connection.execute(
                    self._reset_partitions, [t for t, _, _ in lost], [p for _, p, _ in lost],
                    [view.end_offsets.get((t, p), 0) for t, p, _ in lost], view.cluster_id)
        self._cluster_id = view.cluster_id
        self._checked_at = asyncio.get_running_loop().time()
        if lost:
            _log.warning("outbox relay for %s: the broker (cluster %s) no longer holds what it acknowledged on %s; "
                         "publishing %d event(s) again", self._schema, view.cluster_id,
                         ", ".join(f"{t}[{p}] from offset {o}" for t, p, o in lost), marked)
        return marked

    async def _mark_lost_events(self, connection: asyncpg.Connection, lost: list[tuple[str, int, int]],
                                keep: list) -> int:
        status = await connection.execute(self._mark_lost, [t for t, _, _ in lost], [p for _, p, _ in lost],
                                          [o for _, _, o in lost], keep)
        marked = int(status.split()[-1])
        self.republished += marked
        return marked

    async def delete_expired(self) -> int:
        """Housekeeping: sent events past their retention, and Idempotency-Keys and events kept for a zone that has
        not registered past theirs. How many sent events were deleted."""
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
            parked = await delete_stale_parked(conn, self._schema, self._settings.ezone_parked_event_retention_days)
        if parked:
            _log.warning("%s: deleted %d event(s) kept over %g days for zones that never registered", self._schema,
                         parked, self._settings.ezone_parked_event_retention_days)
        return result.rowcount or 0


def _ends_before(recorded: asyncpg.Record, view: BrokerView) -> bool:
    """The partition's end offset is before the end of what it acknowledged."""
    end = view.end_offsets.get((recorded["topic"], recorded["partition"]))
    return end is not None and end < recorded["acked_end_offset"]


def _loss(recorded: asyncpg.Record, view: BrokerView, held: set[tuple[str, int, int]]) -> tuple[str, int, int] | None:
    """From which offset the broker lost what it acknowledged on a partition, or None when it holds all of it."""
    topic, partition, end = recorded["topic"], recorded["partition"], recorded["acked_end_offset"]
    if recorded["cluster_id"] != view.cluster_id or partition >= view.partition_counts.get(topic, 0):
        return topic, partition, 0  # another cluster, or the topic or partition is gone: all of it
    if _ends_before(recorded, view) and (topic, partition, end - 1) not in held:
        # From its end on: when the end was reported short, events it still holds go again too, which is harmless.
        return topic, partition, view.end_offsets[topic, partition]
    return None  # holds it all, or cannot tell now (no leader): the next check looks again


async def mark_for_replay(engine: AsyncEngine, schema: str, since: datetime) -> int:
    """Queue the retained events sent since `since` to be published again, by hand (`ezone outbox replay`); consumers
    de-duplicate. By when they were sent, not created: an event replayed to a broker that is lost in turn is sent
    again too."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(f"UPDATE {schema}.outbox SET sent_at = NULL, sent_partition = NULL, sent_offset = NULL"
                 f" WHERE sent_at >= :since"),
            {"since": since},
        )
    return result.rowcount or 0


async def outbox_depth(engine: AsyncEngine, schema: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL"))).scalar_one()

