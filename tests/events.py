"""Reading what really reached the broker: tests assert on published events, not only on outbox rows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from ezone_kit.bus import OutgoingRecord, Publisher, decode_headers
from ezone_schemas import Event

from tests.stack import Stack


async def published_events(stack: Stack, topic: str, ce_type: str, *, key: str | None = None,
                           where: dict | None = None, expected: int = 1, timeout_s: float = 20.0) -> list[dict]:
    """Events of `ce_type` on `topic` (optionally with record key `key` and payload fields equal to `where`),
    read from the start without a consumer group; waits until at least `expected` are there.
    Each result is the payload plus `_headers`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await _read_all(stack.bootstrap_servers, topic, ce_type, key, where or {})
        if len(found) >= expected or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def _read_all(bootstrap: str, topic: str, ce_type: str, key: str | None, where: dict) -> list[dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer.topics()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if end[tp] > 0}
        found: list[dict] = []
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1_000)
            if not batch:
                break
            for tp, records in batch.items():
                for record in records:
                    headers = decode_headers(record.headers or ())
                    if headers.get("ce_type") != ce_type or (key is not None and (record.key or b"").decode() != key):
                        continue
                    payload = orjson.loads(record.value)
                    if all(payload.get(k) == v for k, v in where.items()):
                        found.append(payload | {"_headers": headers})
                if records[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
        return found
    finally:
        await consumer.stop()


async def publish_as(stack: Stack, *events: Event, source: str, event_ids: list[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Publish events as the service at `source` would (its relay's record shape); returns their ids."""
    ids = event_ids or [uuid.uuid4() for _ in events]
    publisher = Publisher(stack.settings())
    try:
        await publisher.publish([
            OutgoingRecord(id=event_id, topic=e.topic, key=e.partition_key(), ce_type=e.ce_type, ce_source=source,
                           ce_time=datetime.now(UTC), value=e.model_dump_json().encode())
            for event_id, e in zip(ids, events, strict=True)
        ])
    finally:
        await publisher.stop()
    return ids
