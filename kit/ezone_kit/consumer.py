"""Idempotent Kafka consumers: at-least-once delivery, exactly-once effects.

For each fetch from `getmany` (one or more partitions' records), one database transaction holds, per event, the
handler's effects (including events it emits, through the outbox) and an inbox row
`(consumer, event id)`; offsets are committed only after that transaction commits (gathered over up to
COMMIT_INTERVAL_S). A redelivered event finds its inbox row and has no second effect.

A handler that keeps failing is retried with backoff; after the last attempt the record goes to
`<topic>.dlq.<group>` with the error in its headers and the partition moves on. Infrastructure
failures (the database is down) are not the event's fault: the batch is retried from its first
offset instead, without dead-lettering anything.

An event naming a zone that does not exist is skipped (counted as `unknown_zone`, logged, never handled) when the
consumer's spec says how to know the zones (`ConsumerSpec.zones`, see zones.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from ezone_schemas import Event, ZoneRegistered
from ezone_schemas.topics import dead_letter_topic
from sqlalchemy import any_, bindparam, delete, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .bus import DLQ_HEADER_PREFIX, Envelope, EnvelopeError, Publisher, consume_span, parse_record, start_consume_span
from .metrics import PlatformMetrics
from .settings import KitSettings
from .telemetry import trace_id_of
from .uow import Outbox
from .zones import KnownZones, ProjectedZones, zone_of

_log = logging.getLogger("ezone.consumer")


@dataclass
class HandlerContext:
    """What a handler gets: the event, the transaction to write in, and a way to raise new events."""

    envelope: Envelope
    session: AsyncSession
    _outbox: Outbox
    settings: KitSettings  # the service's own settings class, e.g. where its links point
    _emitted: list[Event] = field(default_factory=list)
    # Outbox rows of what the events kept for a zone emitted when its zone.registered (this event) released them: made
    # in each kept event's own span, so each carries its trace. Written after this event's own.
    _released_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event(self) -> Any:
        return self.envelope.data

    def emit(self, *events: Event) -> None:
        self._emitted.extend(events)

    def _outbox_rows(self) -> list[dict[str, Any]]:
        """In the span of the event being handled: its emitted events' rows carry its trace."""
        return self._outbox.rows(self._emitted) + self._released_rows


Handler = Callable[[HandlerContext], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group of a service: the topics it reads and a handler per event type."""

    name: str  # the group id suffix; the group is `ezone.<service>.<name>`
    topics: tuple[str, ...]
    handlers: dict[type[Event], Handler]
    # Nobody waits on its effects as they happen (no alert, no page): it fetches with the background wait, in fewer,
    # larger batches, where a broker holds each fetch for its wait (the embedded one does).
    background: bool = False
    # How it knows which zones exist: an event naming another zone is skipped (and, with ProjectedZones, kept until
    # the zone registers). None: every event is handled.
    zones: KnownZones | None = None

    def group(self, service: str) -> str:
        return f"ezone.{service}.{self.name}"

    def dead_letter_topics(self, service: str) -> list[str]:
        return [dead_letter_topic(topic, self.group(service)) for topic in self.topics]


class _AssignmentListener(ConsumerRebalanceListener):
    """Commits what was processed before partitions go to another member, and tells whoever waits (start-up, tests)
    when this worker owns partitions."""

    def __init__(self, worker: ConsumerWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: object) -> None:
        self._worker.assigned.clear()
        await self._worker.commit_offsets()

    async def on_partitions_assigned(self, assigned: object) -> None:
        self._worker.assigned.set()


# Offsets of processed events are committed at most this often while events keep coming, and at once when the
# partitions fall idle, are revoked or the worker stops. A crash redelivers what was processed since the last
# commit; the inbox turns that into nothing. One broker round trip per transaction would cost more than the events.
COMMIT_INTERVAL_S = 0.5
ASSIGNMENT_CHECK_EVERY_S = 5.0
CONSUMER_METADATA_MAX_AGE_MS = 5_000
STABLE_GROUP = "Stable"

_TRANSIENT = (OperationalError, InterfaceError, ConnectionError, OSError)
_ZONE_REGISTERED = ZoneRegistered.ce_type


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _TRANSIENT)


class ConsumerWorker:
    def __init__(
        self,
        service: str,
        spec: ConsumerSpec,
        sessions: async_sessionmaker,
        outbox: Outbox,
        publisher: Publisher,
        settings: KitSettings,
        metrics: PlatformMetrics | None = None,
    ) -> None:
        self.spec = spec
        self.group = spec.group(service)
        self._handlers = {model.ce_type: handler for model, handler in spec.handlers.items()}
        self._zones = spec.zones
        self._known_zones: set[str] = set()  # zones are never removed: one known is not asked about again
        if isinstance(spec.zones, ProjectedZones):
            self._handlers[_ZONE_REGISTERED] = self._registering(spec.zones, self._handlers.get(_ZONE_REGISTERED))
        self._sessions = sessions
        self._outbox = outbox
        self._inbox = outbox.table.metadata.tables[f"{outbox.table.schema}.inbox"]
        # An array parameter, not an expanding IN: one statement text whatever the batch size.
        self._seen = select(self._inbox.c.event_id).where(
            self._inbox.c.consumer == self.group, self._inbox.c.event_id == any_(bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))))
        self._claim = pg_insert(self._inbox).on_conflict_do_nothing().returning(self._inbox.c.event_id)
        self._publisher = publisher
        self._settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self.processed = 0
        self.dead_lettered = 0
        self.duplicates_skipped = 0
        self.unknown_zone_skipped = 0
        self.lag = 0
        self._metrics = metrics
        self.assigned = asyncio.Event()
        self.resubscribed = 0
        self._processed_offsets: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        self._admin: AIOKafkaAdminClient | None = None
        self._assignment_checked_at = 0.0
        self._short_checks = 0

    def _new_consumer(self) -> AIOKafkaConsumer:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=self.group,
            client_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            fetch_max_wait_ms=settings.kafka_background_fetch_max_wait_ms if self.spec.background
            else settings.kafka_fetch_max_wait_ms,
            max_poll_interval_ms=300_000,
            request_timeout_ms=max(40_000, settings.kafka_session_timeout_ms + 5_000),
            metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
        )
        consumer.subscribe(list(self.spec.topics), listener=_AssignmentListener(self))
        return consumer

    async def run(self) -> None:
        backoff = 0.0
        while True:
            try:
                if self._consumer is None:
                    consumer = self._new_consumer()
                    try:
                        await consumer.start()
                    except BaseException:
                        await consumer.stop()
                        raise
                    self._consumer = consumer
                batches = await self._consumer.getmany(
                    timeout_ms=1_000, max_records=self._settings.ezone_consumer_batch_size
                )
                if batches:
                    await self._process_fetched(batches)
                if not batches or asyncio.get_running_loop().time() - self._last_commit >= COMMIT_INTERVAL_S:
                    await self.commit_offsets()
                self.lag = await self._lag()
                if asyncio.get_running_loop().time() - self._assignment_checked_at >= ASSIGNMENT_CHECK_EVERY_S:
                    await self._check_assignment()
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a consumer outlives broker and database outages
                backoff = min(10.0, max(0.25, backoff * 2))
                _log.warning("consumer %s: %s; retrying in %.1fs", self.group, exc, backoff)
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))

    async def _check_assignment(self) -> None:
        """Subscribe again when the group has left partitions without a member (see the module's docstring)."""
        assert self._consumer is not None
        self._assignment_checked_at = asyncio.get_running_loop().time()
        existing = sum(len(self._consumer.partitions_for_topic(topic) or ()) for topic in self.spec.topics)
        held = len(self._consumer.assignment())
        # The round-robin assignor gives each of n members of a group of identical subscriptions existing // n or more.
        members = 1 if held >= existing else await self._stable_group_members()
        if members is None or held >= existing // members:
            self._short_checks = 0
            return
        self._short_checks += 1
        if self._short_checks < 2:  # once may be a rebalance this member has not heard the end of yet
            return
        self._short_checks = 0
        self.resubscribed += 1
        _log.warning("consumer %s: assigned %d of the %d partitions of %s in a group of %d; subscribing again",
                     self.group, held, existing, ", ".join(self.spec.topics), members)
        await self.commit_offsets()
        self._consumer.unsubscribe()
        self._consumer.subscribe(list(self.spec.topics), listener=_AssignmentListener(self))

    async def _stable_group_members(self) -> int | None:
        """How many members the group has, or None while it rebalances."""
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._settings.kafka_bootstrap_servers,
                                        request_timeout_ms=10_000)
            await admin.start()
            self._admin = admin
        try:
            [response] = await self._admin.describe_consumer_groups([self.group])
        except Exception:
            admin, self._admin = self._admin, None
            await admin.close()
            raise
        [group] = response.to_object()["groups"]
        return len(group["members"]) if group["error_code"] == 0 and group["state"] == STABLE_GROUP else None

    async def _lag(self) -> int:
        assert self._consumer is not None
        behind = 0
        for partition in self._consumer.assignment():
            highwater = self._consumer.highwater(partition)
            if highwater is not None:
                behind += max(0, highwater - await self._consumer.position(partition))
        return behind

    def _count(self, outcome: str, count: int = 1) -> None:
        if self._metrics is not None:
            self._metrics.count_consumed(self.group, outcome, count)

    async def commit_offsets(self) -> None:
        """Commit the offsets of every event processed so far. If that fails (the broker is away, the partitions went
        to another member), they are not retried: the events are delivered again and skipped by the inbox."""
        if self._consumer is None or not self._processed_offsets:
            return
        offsets, self._processed_offsets = self._processed_offsets, {}
        self._last_commit = asyncio.get_running_loop().time()
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - see above
            _log.info("consumer %s: offsets not committed (%s); those events will be skipped when delivered again",
                      self.group, exc)

    async def stop(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            with contextlib.suppress(Exception):
                await admin.close()
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.commit_offsets(), 5)
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def _process_fetched(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """What one fetch returned, from however many partitions, in one transaction; then every partition's offset
        is due for the next commit.
        Each partition's records keep their order; partitions are independent of each other."""
        assert self._consumer is not None
        try:
            pending = await self._parse([record for records in batches.values() for record in records])
            if pending:
                failure = await self._all_at_once(pending)
                if failure is not None:
                    await self._one_by_one(pending, *failure)
        except Exception:
            # Nothing of this fetch is committed: read it again from each partition's first record.
            for partition, records in batches.items():
                self._consumer.seek(partition, records[0].offset)
            raise
        self._processed_offsets |= {partition: records[-1].offset + 1 for partition, records in batches.items()}

    async def _parse(self, records: Sequence[ConsumerRecord]) -> list[tuple[ConsumerRecord, Envelope, Handler]]:
        """The records this consumer handles, as envelopes; a malformed one goes to the DLQ at once."""
        pending = []
        for record in records:
            try:
                envelope = parse_record(record, self._handlers)
            except EnvelopeError as exc:
                await self._dead_letter(record, exc, attempts=1)
                continue
            handler = self._handlers.get(envelope.type)
            if handler is not None:  # others are events on this topic that this consumer does not need
                pending.append((record, envelope, handler))
        return pending

    async def _fresh(self, session: AsyncSession, pending: list[tuple[ConsumerRecord, Envelope, Handler]]
                     ) -> list[tuple[ConsumerRecord, Envelope, Handler]]:
        """The events not in the inbox yet, each once."""
        seen = set((await session.execute(self._seen, {"ids": [envelope.id for _, envelope, _ in pending]})).scalars())
        fresh = []
        for item in pending:
            if item[1].id in seen:
                self.duplicates_skipped += 1
                self._count("duplicate")
                continue
            seen.add(item[1].id)  # the same event twice in one batch
            fresh.append(item)
        return fresh

    async def _all_at_once(self, pending: list[tuple[ConsumerRecord, Envelope, Handler]]
                           ) -> tuple[BaseException, uuid.UUID | None] | None:
        """The fast path: every event's effects, inbox and outbox rows in bulk, one transaction. The inbox rows go in
        first (ON CONFLICT DO NOTHING): the events they add are the fresh ones, without a separate look-up. When a
        handler fails, the transaction is rolled back whole (no savepoint to pay for on every batch): returns the error
        and the event that raised it, for the events to be handled one by one."""
        failed_first_attempt = None
        registered: set[str] = set()  # zones whose zone.registered this batch handled
        zoneless: list[Envelope] = []  # events naming a zone that does not exist
        unique = list({envelope.id: (envelope, handler) for _, envelope, handler in pending}.values())
        # Started before the inbox insert, which records each event's trace id; ended below, whatever happens.
        spans = {envelope.id: start_consume_span(envelope, self.group, self._settings.kafka_bootstrap_servers)
                 for envelope, _ in unique}
        # The statements the batch shares (inbox, zones, outbox) run in the first event's span, which ends last: when a
        # fetch has one event (an alert's path), all of its work is inside its process span.
        lead = spans[unique[0][0].id]
        try:
            async with self._sessions() as session, session.begin():
                with trace.use_span(lead):
                    inbox_rows = [self._inbox_row(envelope, spans[envelope.id]) for envelope, _ in unique]
                    added = set((await session.execute(self._claim, inbox_rows)).scalars())
                fresh = [(envelope, handler) for envelope, handler in unique if envelope.id in added]
                skipped = len(pending) - len(fresh)
                if skipped:
                    self.duplicates_skipped += skipped
                    self._count("duplicate", skipped)
                for envelope, _ in unique:
                    if envelope.id not in added and spans[envelope.id] is not lead:
                        spans.pop(envelope.id).end()
                if not fresh:
                    return None
                with trace.use_span(lead):
                    unknown = await self._unknown_zones(session, [envelope for envelope, _ in fresh], remember=True)
                outbox_rows: list[dict[str, Any]] = []
                for envelope, handler in fresh:
                    zone = zone_of(envelope.data)
                    span = spans[envelope.id] if spans[envelope.id] is lead else spans.pop(envelope.id)
                    with trace.use_span(span, end_on_exit=span is not lead):
                        failed_first_attempt = envelope.id
                        if zone in unknown and zone not in registered and envelope.type != _ZONE_REGISTERED:
                            await self._skip_unknown_zone(session, envelope, zone)
                            zoneless.append(envelope)
                        else:
                            context = HandlerContext(envelope, session, self._outbox, self._settings)
                            await handler(context)
                            outbox_rows += context._outbox_rows()
                            if envelope.type == _ZONE_REGISTERED and zone is not None:
                                registered.add(zone)
                        failed_first_attempt = None
                with trace.use_span(lead):
                    await self._outbox.insert_rows(session, outbox_rows)
        except Exception as exc:
            if _is_transient(exc):
                raise
            _log.info("consumer %s: a batch of %d failed (%s); handling its events one by one", self.group, len(pending), exc)
            return exc, failed_first_attempt
        finally:
            for span in spans.values():
                span.end()
        self._known_zones |= registered
        self.processed += len(fresh) - len(zoneless)
        self._count("processed", len(fresh) - len(zoneless))
        if zoneless:
            self.unknown_zone_skipped += len(zoneless)
            self._count("unknown_zone", len(zoneless))
        return None

    async def _one_by_one(self, pending: list[tuple[ConsumerRecord, Envelope, Handler]], fast_path_error: BaseException,
                          failed_first_attempt: uuid.UUID | None) -> None:
        """Each event in a savepoint of its own, so a failing one is retried, then dead-lettered, alone. Counted
        once the transaction has committed, so whoever reads the counts finds the effects stored."""
        outcomes: Counter[str] = Counter()
        async with self._sessions() as session, session.begin():
            for record, envelope, handler in await self._fresh(session, pending):
                # The event whose handler failed in the fast path has used its first attempt.
                first_attempt = 2 if envelope.id == failed_first_attempt else 1
                if first_attempt > self._settings.ezone_consumer_max_attempts:
                    await self._dead_letter(record, fast_path_error, attempts=1)
                    continue
                outcome = await self._process_with_retries(session, record, envelope, handler, first_attempt)
                if outcome is not None:
                    outcomes[outcome] += 1
        self.processed += outcomes["processed"]
        self.unknown_zone_skipped += outcomes["unknown_zone"]
        for outcome, count in outcomes.items():
            self._count(outcome, count)

    def _inbox_row(self, envelope: Envelope, span: Any) -> dict[str, Any]:
        span_context = span.get_span_context()
        return {
            "consumer": self.group,
            "event_id": envelope.id,
            "ce_type": envelope.type,
            "topic": envelope.topic,
            "partition": envelope.partition,
            "offset": envelope.offset,
            "trace_id": format(span_context.trace_id, "032x") if span_context.is_valid else trace_id_of(envelope.traceparent),
        }

    async def _process_with_retries(
        self, session: AsyncSession, record: ConsumerRecord, envelope: Envelope, handler: Handler, first_attempt: int
    ) -> str | None:
        """One event in its own savepoint, retried with backoff, dead-lettered after the last attempt. Returns how it
        went ("processed", "unknown_zone"), or None when it was dead-lettered."""
        max_attempts = self._settings.ezone_consumer_max_attempts
        for attempt in range(first_attempt, max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._settings.ezone_consumer_retry_backoff_s * 2 ** (attempt - 2))
            context = HandlerContext(envelope, session, self._outbox, self._settings)
            try:
                with consume_span(envelope, self.group, self._settings.kafka_bootstrap_servers) as span:
                    async with session.begin_nested():
                        unknown = next(iter(await self._unknown_zones(session, [envelope], remember=False)), None)
                        if unknown is not None:
                            await self._skip_unknown_zone(session, envelope, unknown)
                        else:
                            await handler(context)
                            await self._outbox.insert_rows(session, context._outbox_rows())
                        await session.execute(pg_insert(self._inbox).values(self._inbox_row(envelope, span)))
                return "processed" if unknown is None else "unknown_zone"
            except Exception as exc:
                if _is_transient(exc):
                    raise
                if attempt >= max_attempts:
                    _log.error("consumer %s: event %s failed %d times, dead-lettering: %s", self.group, envelope.id, attempt, exc)
                    await self._dead_letter(record, exc, attempts=attempt)
                    return None
                _log.warning("consumer %s: event %s attempt %d failed (%s); retrying", self.group, envelope.id, attempt, exc)

    async def _unknown_zones(self, session: AsyncSession, envelopes: Sequence[Envelope], *, remember: bool) -> set[str]:
        """The zones these events name that do not exist as far as this service knows (none without `spec.zones`).
        `remember`: no handler has written in the transaction yet, so the zones found are committed ones, and kept."""
        if self._zones is None:
            return set()
        named = {zone for envelope in envelopes
                 if envelope.type != _ZONE_REGISTERED and (zone := zone_of(envelope.data)) is not None}
        asked = named - self._known_zones
        if not asked:
            return set()
        known = await self._zones.known(session, asked)
        if remember:
            self._known_zones |= known
        return asked - known

    async def _skip_unknown_zone(self, session: AsyncSession, envelope: Envelope, zone: str) -> None:
        """Not handled; with ProjectedZones kept, for its zone's registration to handle."""
        keeps = isinstance(self._zones, ProjectedZones)
        if keeps:
            await self._zones.park(session, self.group, envelope)
        _log.warning("consumer %s: %s %s names zone %r, which %s; skipped%s", self.group, envelope.type, envelope.id,
                     zone, "this service has not heard of" if keeps else "does not exist",
                     " (kept until the zone registers)" if keeps else "")

    def _registering(self, zones: ProjectedZones, then: Handler | None) -> Handler:
        """zone.registered: the zone is known from now on (after `then`, the service's own handler), and the events kept
        for it are handled, oldest first, each in a savepoint. One that fails goes to the DLQ without its inbox row, as
        any dead-lettered event, so a replay reaches this consumer again. Each is processed in a process span of its own
        that continues its own trace (the context it was kept with) and links the zone.registered's span, the cause
        of processing it now."""
        async def handler(ctx: HandlerContext) -> None:
            event: ZoneRegistered = ctx.event
            await zones.register(ctx.session, event)
            if then is not None:
                await then(ctx)
            kept = await zones.take_parked(ctx.session, self.group, event.zone_id)
            registration = trace.Link(trace.get_current_span().get_span_context())
            for envelope in kept:
                handle = self._handlers.get(envelope.type)
                if handle is None:  # a type this consumer no longer handles
                    continue
                released = HandlerContext(envelope, ctx.session, ctx._outbox, ctx.settings)
                try:
                    with consume_span(envelope, self.group, self._settings.kafka_bootstrap_servers, [registration]):
                        async with ctx.session.begin_nested():
                            await handle(released)
                        ctx._released_rows += released._outbox_rows()
                except Exception as exc:
                    if _is_transient(exc):
                        raise
                    _log.error("consumer %s: event %s, kept until zone %r registered, failed: %s; dead-lettering",
                               self.group, envelope.id, event.zone_id, exc)
                    await ctx.session.execute(delete(self._inbox).where(
                        self._inbox.c.consumer == self.group, self._inbox.c.event_id == envelope.id))
                    await self._dead_letter(_record_of(envelope), exc, attempts=1)
            if kept:
                _log.info("consumer %s: zone %r registered; handled the %d event(s) kept for it", self.group,
                          event.zone_id, len(kept))

        return handler

    async def _dead_letter(self, record: ConsumerRecord, exc: BaseException, attempts: int) -> None:
        headers = [(name, value) for name, value in (record.headers or ()) if not name.startswith(DLQ_HEADER_PREFIX)]
        dlq_headers = {
            "error": f"{type(exc).__name__}: {exc}"[:4000],
            "attempts": str(attempts),
            "group": self.group,
            "original_topic": record.topic,
            "original_partition": str(record.partition),
            "original_offset": str(record.offset),
        }
        headers += [(DLQ_HEADER_PREFIX + name, value.encode()) for name, value in dlq_headers.items()]
        await self._publisher.publish_raw(
            dead_letter_topic(record.topic, self.group), key=record.key, value=record.value, headers=headers
        )
        self.dead_lettered += 1
        self._count("dead_lettered")


@dataclass(frozen=True)
class _KeptRecord:
    """A kept event as the record it came in (what dead-lettering sends on)."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def _record_of(envelope: Envelope) -> Any:
    assert envelope.data is not None
    return _KeptRecord(envelope.topic, envelope.partition, envelope.offset, envelope.key.encode(),
                       envelope.data.model_dump_json().encode(), [(k, v.encode()) for k, v in envelope.headers.items()])
