"""The event bus: aiokafka behind a small interface, with CloudEvents headers and tracing inside.

Handlers never see Kafka. They receive a parsed `Envelope`; the bus turns outbox rows into
records and records back into envelopes, and opens the produce/consume spans.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiokafka.client
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, OffsetOutOfRangeError, TopicAlreadyExistsError, for_code
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest
from ezone_schemas import Event, event_class
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .settings import KitSettings
from .telemetry import context_from_headers, current_trace_headers, span_context_of, tracer

_log = logging.getLogger("ezone.bus")

SPEC_VERSION = "1.0"
DLQ_HEADER_PREFIX = "ezone_dlq_"
UNKNOWN_TOPIC_OR_PARTITION = 3
LATEST_OFFSET = -1
# How long a look for a record may take: Tansu answers a fetch beyond its end with nothing, not an error.
HOLDS_TIMEOUT_S = 5.0


def _metadata_request_without_topic_creation(topics: list[str] | None = None,
                                             allow_auto_topic_creation: bool | None = None) -> MetadataRequest:
    return MetadataRequest(topics, allow_auto_topic_creation=False)


# ezone creates its topics itself, with its partition count (`ensure_topics`). aiokafka's clients ask the broker to
# create any topic they refresh metadata for, and a broker that allows it (Tansu always does) creates it with its own
# defaults: after a broker restart, a consumer's first refresh made ezone.results.v1 a topic of 4 partitions where
# `ezone up` wants 1. So no ezone client ever asks for that.
aiokafka.client.MetadataRequest = _metadata_request_without_topic_creation


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


@dataclass(frozen=True)
class Acknowledged:
    """Where the broker put a published record."""

    partition: int
    offset: int


@dataclass(frozen=True)
class BrokerView:
    """What the broker holds now: its cluster id, the partition count of each topic asked about that exists, and the end
    offset (the next offset to be written) of each partition asked about that exists and has a leader."""

    cluster_id: str | None
    partition_counts: dict[str, int]
    end_offsets: dict[tuple[str, int], int]


class Publisher:
    """Publishes records, each in a PRODUCER span that continues the trace stored with the record. Creates a topic
    (`ensure_topics`) before its first record goes there, when the broker does not have it."""

    def __init__(self, settings: KitSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None  # for `holds`, started at its first use
        self._tracer = tracer("ezone.bus")
        # Topics the broker was seen to have; forgotten when a publish fails or the broker is seen without one.
        self._topics_present: set[str] = set()

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
        await self.reset()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            try:
                await reader.stop()
            except asyncio.CancelledError:
                # aiokafka's consumer awaits fetch tasks it has just cancelled (Fetcher.close), which lets their
                # cancellation out when the broker went away; only a cancellation of this task goes on.
                if asyncio.current_task().cancelling():
                    raise

    async def reset(self) -> None:
        """Drop the producer's connection after a failure; the next publish reconnects. The reader of `holds`
        reconnects by itself."""
        self._topics_present.clear()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def broker_view(self, topics: Iterable[str], partitions: Iterable[tuple[str, int]]) -> BrokerView:
        """The broker's cluster id, which of `topics` it has (with their partition counts), and the end offset of each
        of `partitions` there. Raises when the broker cannot tell (unreachable, a partition between leaders)."""
        await self.start()
        assert self._producer is not None
        client = self._producer.client
        node = client.get_random_node()
        if node is None:
            raise KafkaConnectionError("no broker is known yet")
        metadata = (await client.send(node, MetadataRequest(sorted(set(topics)), allow_auto_topic_creation=False)))
        metadata = metadata.to_object()
        counts: dict[str, int] = {}
        leaders: dict[tuple[str, int], int] = {}
        for topic in metadata["topics"]:
            if topic["error_code"] == UNKNOWN_TOPIC_OR_PARTITION:
                self._topics_present.discard(topic["topic"])
                continue
            if topic["error_code"]:
                raise for_code(topic["error_code"])(f"metadata of {topic['topic']}")
            counts[topic["topic"]] = len(topic["partitions"])
            self._topics_present.add(topic["topic"])
            leaders |= {(topic["topic"], p["partition"]): p["leader"] for p in topic["partitions"] if p["leader"] >= 0}
        asked: dict[int, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        for topic, partition in set(partitions):
            if (topic, partition) in leaders:
                asked[leaders[topic, partition]][topic].append((partition, LATEST_OFFSET))
        ends: dict[tuple[str, int], int] = {}
        for leader, by_topic in asked.items():
            response = (await client.send(leader, OffsetRequest(-1, 0, list(by_topic.items())))).to_object()
            for topic in response["topics"]:
                for partition in topic["partitions"]:
                    if partition["error_code"]:
                        raise for_code(partition["error_code"])(
                            f"end offset of {topic['topic']}[{partition['partition']}]")
                    ends[topic["topic"], partition["partition"]] = partition["offset"]
        return BrokerView(metadata.get("cluster_id"), counts, ends)

    async def holds(self, positions: Iterable[tuple[str, int, int]]) -> set[tuple[str, int, int]]:
        """Which of these (topic, partition, offset) the broker has a record at: read, not taken from its end offsets,
        which Tansu reports short (the base offset of a partition's last batch, plus one)."""
        wanted = {TopicPartition(topic, partition): offset for topic, partition, offset in positions}
        if self._reader is None:
            reader = AIOKafkaConsumer(bootstrap_servers=self._settings.kafka_bootstrap_servers, group_id=None,
                                      enable_auto_commit=False, auto_offset_reset="none", fetch_max_wait_ms=100)
            await reader.start()
            self._reader = reader
        self._reader.assign(list(wanted))
        for partition, offset in wanted.items():
            self._reader.seek(partition, offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLDS_TIMEOUT_S
        held, pending = set(), set(wanted)
        while pending and (left_s := deadline - loop.time()) > 0:
            try:
                fetched = await self._reader.getmany(*pending, timeout_ms=int(left_s * 1000))
            except OffsetOutOfRangeError as exc:  # Apache Kafka's answer for an offset past the end
                pending -= set(exc.args[0])
                continue
            for partition, records in fetched.items():
                pending.discard(partition)
                if any(record.offset == wanted[partition] for record in records):
                    held.add((partition.topic, partition.partition, wanted[partition]))
        return held

    async def _ensure_present(self, topics: Iterable[str]) -> None:
        """Create, with ezone's partition count, the topics the broker does not have (a new or restarted one) before a
        record goes there: a topic the broker would create by itself would have the broker's count."""
        unknown = set(topics) - self._topics_present
        if unknown:
            view = await self.broker_view(unknown, ())
            missing = unknown - set(view.partition_counts)
            if missing and (created := await ensure_topics(self._settings, missing)):
                _log.warning("the broker did not have topic(s) %s: created them", ", ".join(sorted(created)))
            self._topics_present |= unknown

    async def publish(self, records: Sequence[OutgoingRecord]) -> list[Acknowledged]:
        """Publish in order and wait until the broker acknowledged every record; where each one went, in order."""
        await self.start()
        topics = {record.topic for record in records}
        await self._ensure_present(topics)
        try:
            sent = await asyncio.gather(*[await self._send(record) for record in records])
        except BaseException:
            self._topics_present -= topics  # the broker may have lost them: asked again before the next record
            raise
        return [Acknowledged(metadata.partition, metadata.offset) for metadata in sent]

    async def _send(self, record: OutgoingRecord) -> asyncio.Future:
        """Queue one record, in a PRODUCER span; the future of its acknowledgement."""
        assert self._producer is not None
        # The trace stored with the record; a record without one (sent as it is made) continues the current span.
        parent = context_from_headers(
            {k: v for k, v in (("traceparent", record.traceparent), ("tracestate", record.tracestate)) if v}
        ) if record.traceparent else None
        with self._tracer.start_as_current_span(
            f"send {record.topic}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.name": "send",
                "messaging.operation.type": "send",
                **server_attributes(self._settings.kafka_bootstrap_servers),
                "messaging.destination.name": record.topic,
                "messaging.message.id": str(record.id),
                "messaging.kafka.message.key": record.key,
                "cloudevents.event_type": record.ce_type,
            },
        ):
            return await self._producer.send(
                record.topic, record.value, key=record.key.encode(), headers=record.headers(current_trace_headers())
            )

    async def publish_raw(self, topic: str, *, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """Publish a record as it is (dead-lettering and DLQ replay keep the original headers)."""
        await self.start()
        assert self._producer is not None
        await self._ensure_present([topic])
        try:
            await self._producer.send_and_wait(topic, value, key=key, headers=headers)
        except BaseException:
            self._topics_present.discard(topic)
            raise

    async def ping(self, timeout_s: float = 2.0) -> bool:
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout_s)
            return True
        except Exception:  # noqa: BLE001 - readiness only reports, it never raises
            return False


def server_attributes(bootstrap_servers: str) -> dict[str, str | int]:
    """`server.address`/`server.port` of a messaging span: the first bootstrap server (the one a client starts with)."""
    first = bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":") if ":" in first else (first, "", "")
    return {"server.address": host, **({"server.port": int(port)} if port.isdigit() else {})}


def start_consume_span(envelope: Envelope, group: str, bootstrap_servers: str,
                       links: Sequence[trace.Link] = ()) -> trace.Span:
    """The span of processing one event, started but not current (the caller makes it current with `trace.use_span`
    while it works on the event): a child of the producer's span when the record carries one, and linked to it, the
    message's creation context, as the messaging conventions ask of a process span; and to `links` (what else caused
    the processing now)."""
    carrier = {k: v for k, v in envelope.headers.items() if k in ("traceparent", "tracestate")}
    parent = context_from_headers(carrier)
    creation = span_context_of(carrier)
    return tracer("ezone.bus").start_span(
        f"process {envelope.topic}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=[*([trace.Link(creation)] if creation is not None else ()), *links],
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            **server_attributes(bootstrap_servers),
            "messaging.destination.name": envelope.topic,
            "messaging.consumer.group.name": group,
            "messaging.message.id": str(envelope.id),
            "messaging.kafka.offset": envelope.offset,
            "messaging.destination.partition.id": str(envelope.partition),
            "cloudevents.event_type": envelope.type,
        },
    )


def consume_span(envelope: Envelope, group: str, bootstrap_servers: str, links: Sequence[trace.Link] = ()):
    return trace.use_span(start_consume_span(envelope, group, bootstrap_servers, links), end_on_exit=True)


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
