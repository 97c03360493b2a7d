"""The event bus: aiokafka behind a small interface, with CloudEvents headers and tracing inside.

Handlers never see Kafka. They receive a parsed `Envelope`; the bus turns outbox rows into
records and records back into envelopes, and opens the produce/consume spans.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from ezone_schemas import Event, event_class
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .settings import KitSettings
from .telemetry import context_from_headers, current_trace_headers, tracer

_log = logging.getLogger("ezone.bus")

SPEC_VERSION = "1.0"
DLQ_HEADER_PREFIX = "ezone_dlq_"


@dataclass(frozen=True)
class OutgoingRecord:
    """One event ready to publish (an outbox row, or a DLQ replay)."""

    id: uuid.UUID
    topic: str
    key: str
    ce_type: str
    ce_source: str
    ce_time: datetime
    value: bytes
    traceparent: str | None = None
    tracestate: str | None = None
    extra_headers: tuple[tuple[str, bytes], ...] = ()

    def headers(self, trace_headers: dict[str, str]) -> list[tuple[str, bytes]]:
        headers = [
            ("ce_id", str(self.id).encode()),
            ("ce_type", self.ce_type.encode()),
            ("ce_source", self.ce_source.encode()),
            ("ce_time", self.ce_time.isoformat().encode()),
            ("ce_specversion", SPEC_VERSION.encode()),
            ("content-type", b"application/json"),
        ]
        headers += [(name, value.encode()) for name, value in trace_headers.items()]
        headers += list(self.extra_headers)
        return headers


class EnvelopeError(ValueError):
    """A record that is not a well-formed ezone event: it can never succeed, so it goes straight to the DLQ."""


@dataclass(frozen=True)
class Envelope:
    id: uuid.UUID
    type: str
    source: str
    time: str
    key: str
    topic: str
    partition: int
    offset: int
    headers: dict[str, str] = field(repr=False)
    data: Event | None = None  # None when the type is not one this consumer knows

    @property
    def traceparent(self) -> str | None:
        return self.headers.get("traceparent")


def decode_headers(raw_headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    # Kafka allows a header without a value: read as empty.
    return {name: (value or b"").decode("utf-8", errors="replace") for name, value in raw_headers}


def parse_record(record: Any, handled_types: Iterable[str]) -> Envelope:
    """The record as an ezone event; EnvelopeError for anything that keeps it from being one (then it goes to the
    DLQ): whatever is wrong with a record must never block its partition."""
    try:
        return _parse_record(record, handled_types)
    except EnvelopeError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable record is poison, whatever the reason
        raise EnvelopeError(f"the record cannot be read: {type(exc).__name__}: {exc}") from exc


def _parse_record(record: Any, handled_types: Iterable[str]) -> Envelope:
    if record.key is None:
        raise EnvelopeError("the record has no key: ezone keys every event by its school or zone")
    try:
        key = record.key.decode()
    except UnicodeDecodeError:
        raise EnvelopeError(f"the key is not UTF-8: {record.key[:64]!r}") from None
    headers = decode_headers(record.headers or ())
    missing = [name for name in ("ce_id", "ce_type", "ce_source", "ce_specversion") if name not in headers]
    if missing:
        raise EnvelopeError(f"missing CloudEvents header(s): {', '.join(missing)}")
    try:
        event_id = uuid.UUID(headers["ce_id"])
    except ValueError:
        raise EnvelopeError(f"ce_id {headers['ce_id']!r} is not a UUID") from None
    ce_type = headers["ce_type"]
    data: Event | None = None
    if ce_type in handled_types:
        model = event_class(ce_type)
        if model is None:
            raise EnvelopeError(f"no contract is registered for event type {ce_type}")
        try:
            data = model.model_validate(orjson.loads(record.value))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise EnvelopeError(f"the value is not a valid {ce_type}: {exc}") from exc
    return Envelope(
        id=event_id,
        type=ce_type,
        source=headers["ce_source"],
        time=headers.get("ce_time", ""),
        key=key,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        headers=headers,
        data=data,
    )


def producer_config(settings: KitSettings) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable_idempotence": settings.kafka_enable_idempotence,
        "linger_ms": settings.kafka_linger_ms,
        # Fail a send in seconds rather than the 40 s default, so the relay backs off and retries sooner.
        "request_timeout_ms": 5_000,
        "metadata_max_age_ms": 30_000,
    }


class Publisher:
    """Publishes records, each in a PRODUCER span that continues the trace stored with the record."""

    def __init__(self, settings: KitSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._tracer = tracer("ezone.bus")

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**producer_config(self._settings))
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def reset(self) -> None:
        """Drop the connection after a failure; the next publish reconnects."""
        await self.stop()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Publish in order and wait until the broker acknowledged every record."""
        await self.start()
        assert self._producer is not None
        futures = []
        for record in records:
            parent = context_from_headers(
                {k: v for k, v in (("traceparent", record.traceparent), ("tracestate", record.tracestate)) if v}
            )
            with self._tracer.start_as_current_span(
                f"{record.topic} publish",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "publish",
                    "messaging.destination.name": record.topic,
                    "messaging.message.id": str(record.id),
                    "messaging.kafka.message.key": record.key,
                    "cloudevents.event_type": record.ce_type,
                },
            ):
                futures.append(
                    await self._producer.send(
                        record.topic, record.value, key=record.key.encode(), headers=record.headers(current_trace_headers())
                    )
                )
        await asyncio.gather(*futures)

    async def publish_raw(self, topic: str, *, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """Publish a record as it is (dead-lettering and DLQ replay keep the original headers)."""
        await self.start()
        assert self._producer is not None
        await self._producer.send_and_wait(topic, value, key=key, headers=headers)

    async def ping(self, timeout_s: float = 2.0) -> bool:
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout_s)
            return True
        except Exception:  # noqa: BLE001 - readiness only reports, it never raises
            return False


def start_consume_span(envelope: Envelope, group: str) -> trace.Span:
    """The span of processing one event, started but not current (the caller makes it current with `trace.use_span`
    while it works on the event): a child of the producer's trace when the record carries one."""
    parent = context_from_headers({k: v for k, v in envelope.headers.items() if k in ("traceparent", "tracestate")})
    return tracer("ezone.bus").start_span(
        f"{envelope.topic} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": envelope.topic,
            "messaging.consumer.group.name": group,
            "messaging.message.id": str(envelope.id),
            "messaging.kafka.offset": envelope.offset,
            "messaging.destination.partition.id": str(envelope.partition),
            "cloudevents.event_type": envelope.type,
        },
    )


def consume_span(envelope: Envelope, group: str):
    return trace.use_span(start_consume_span(envelope, group), end_on_exit=True)


def span_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


async def ensure_topics(settings: KitSettings, topics: Iterable[str]) -> list[str]:
    """Create the topics that do not exist yet (explicitly: auto-created topics get the broker's defaults)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in dict.fromkeys(topics) if t not in existing]
        if wanted:
            new = [
                NewTopic(t, num_partitions=settings.kafka_topic_partitions, replication_factor=settings.kafka_replication_factor)
                for t in wanted
            ]
            try:
                response = await admin.create_topics(new)
            except TopicAlreadyExistsError:
                return []
            failed = [
                f"{err[0]}: {err[2]}" for err in getattr(response, "topic_errors", []) if err[1] not in (0, 36)
            ]
            if failed:
                raise RuntimeError("could not create topics: " + "; ".join(failed))
        return wanted
    finally:
        await admin.close()
