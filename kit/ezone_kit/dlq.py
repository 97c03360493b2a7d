"""Dead-letter topics: list what failed, and replay it to its original topic once the cause is fixed.

Replay is safe to repeat: the consumer that dead-lettered an event never recorded it in its inbox,
so it processes it now; every other consumer of that topic already has it and skips it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from .bus import DLQ_HEADER_PREFIX, Publisher, decode_headers
from .settings import KitSettings


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    dlq_offset: int
    event_id: str
    ce_type: str
    key: str | None
    group: str
    error: str
    attempts: int
    original_topic: str
    original_partition: int
    original_offset: int
    raw_key: bytes | None
    raw_value: bytes | None
    raw_headers: tuple[tuple[str, bytes], ...]


async def read_dead_letters(settings: KitSettings, topics: Iterable[str]) -> list[DeadLetter]:
    """Everything currently in the given DLQ topics, oldest first (read without a consumer group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None)
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(topic, p) for topic in topics if topic in existing for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2_000)
            if not batch:
                break
            for tp, records in batch.items():
                letters.extend(_letter(r) for r in records if r.offset < end[tp])
                if records and records[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return letters


def _letter(record) -> DeadLetter:  # noqa: ANN001 - aiokafka ConsumerRecord
    headers = decode_headers(record.headers or ())

    def dlq(name: str, default: str = "") -> str:
        return headers.get(DLQ_HEADER_PREFIX + name, default)

    return DeadLetter(
        dlq_topic=record.topic,
        dlq_offset=record.offset,
        event_id=headers.get("ce_id", ""),
        ce_type=headers.get("ce_type", ""),
        key=record.key.decode(errors="replace") if record.key else None,
        group=dlq("group"),
        error=dlq("error"),
        attempts=int(dlq("attempts", "0") or 0),
        original_topic=dlq("original_topic"),
        original_partition=int(dlq("original_partition", "-1") or -1),
        original_offset=int(dlq("original_offset", "-1") or -1),
        raw_key=record.key,
        raw_value=record.value,
        raw_headers=tuple(record.headers or ()),
    )


async def replay_dead_letters(settings: KitSettings, topics: Iterable[str], event_ids: set[str] | None = None) -> int:
    """Publish dead letters back to their original topics, without the DLQ headers; return how many."""
    letters = [
        letter for letter in await read_dead_letters(settings, topics)
        if letter.original_topic and (event_ids is None or letter.event_id in event_ids)
    ]
    publisher = Publisher(settings)
    try:
        for letter in letters:
            headers = [(name, value) for name, value in letter.raw_headers if not name.startswith(DLQ_HEADER_PREFIX)]
            await publisher.publish_raw(letter.original_topic, key=letter.raw_key, value=letter.raw_value, headers=headers)
    finally:
        await publisher.stop()
    return len(letters)
