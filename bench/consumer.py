"""consumer_throughput: how fast one ConsumerWorker takes events off a 4-partition topic when its
handler inserts one row, counting the inbox write and the offset commits; then the same events
delivered a second time (a replay), which the inbox turns into skips."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from ezone_kit.bus import OutgoingRecord, Publisher, ensure_topics
from ezone_kit.consumer import ConsumerSpec, ConsumerWorker, HandlerContext
from ezone_kit.db import create_engine, service_metadata, session_factory
from ezone_kit.telemetry import instrument_engine
from ezone_kit.uow import Outbox
from ezone_schemas import SchoolRegistered
from rich.progress import Progress
from sqlalchemy import Column, Table, Text, func, insert, select, text
from sqlalchemy.dialects.postgresql import UUID

from ezone.stack import wait_for

from .environment import BenchEnvironment
from .progress import wait_for_count
from .report import BenchResult, Figure

SERVICE = "bench"  # the consumer group is ezone.bench.sink
KEYS = 1_000
PUBLISH_CHUNK = 5_000


def school_records(topic: str, count: int) -> list[OutgoingRecord]:
    now = datetime.now(UTC)
    records = []
    for n in range(count):
        event = SchoolRegistered(
            zone_id="bench", school_id=uuid.uuid5(uuid.NAMESPACE_URL, f"bench-school-{n % KEYS}"), code=f"S{n:06d}",
            name=f"School {n}", grade_span="6-8", enrollment=500, registered_at=now,
        )
        records.append(OutgoingRecord(
            id=uuid.uuid4(), topic=topic, key=event.partition_key(), ce_type=event.ce_type, ce_source="/bench",
            ce_time=now, value=event.model_dump_json().encode(),
        ))
    return records


async def publish_all(publisher: Publisher, records: list[OutgoingRecord], description: str, progress: Progress) -> None:
    bar = progress.add_task(description, total=len(records))
    for start in range(0, len(records), PUBLISH_CHUNK):
        chunk = records[start : start + PUBLISH_CHUNK]
        await publisher.publish(chunk)
        progress.advance(bar, len(chunk))
    progress.remove_task(bar)


async def committed_offsets(admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition]) -> int:
    # Partitions named explicitly: Tansu drops the connection on an "all partitions" offset fetch.
    offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    return sum(max(0, meta.offset) for meta in offsets.values())


async def consume(
    worker: ConsumerWorker, counter: Callable[[], int], expected: int,
    admin: AIOKafkaAdminClient, partitions: list[TopicPartition], committed_target: int, description: str, progress: Progress,
) -> float:
    """Run `worker` until `counter()` reaches `expected` and its group's offsets are committed up to
    `committed_target`; return the seconds from its partition assignment until then."""
    task = asyncio.create_task(worker.run())
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(worker.assigned.wait(), 30)  # joining the group is not consuming
        started = loop.time()
        await wait_for_count(progress, description, counter, expected, timeout_s=max(60.0, expected / 50))

        async def all_committed() -> bool:
            return await committed_offsets(admin, worker.group, partitions) >= committed_target

        await wait_for(all_committed, 30, interval_s=0.01, what=f"offsets of {worker.group} committed to {committed_target}")
        return loop.time() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.stop()


async def run(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    events = env.sizes.consumer_events
    database = f"bench_consumer_{uuid.uuid4().hex[:8]}"
    await env.postgres.ensure_database(database)
    # Four partitions, as before the embedded stack went to one: the figures stay comparable across sessions.
    settings = env.settings(env.postgres.url(database), kafka_topic_partitions=4)
    metadata = service_metadata(SERVICE)
    effects = Table(
        "effects", metadata, Column("event_id", UUID(as_uuid=True), primary_key=True), Column("code", Text, nullable=False)
    )
    engine = create_engine(settings)
    instrument_engine(engine)  # as Kit.start does: a service pays for a span per SQL statement

    async def record_effect(ctx: HandlerContext) -> None:
        await ctx.session.execute(insert(effects).values(event_id=ctx.envelope.id, code=ctx.event.code))

    topic = f"bench.consumer.{uuid.uuid4().hex[:8]}"
    spec = ConsumerSpec(name="sink", topics=(topic,), handlers={SchoolRegistered: record_effect})
    partitions = [TopicPartition(topic, n) for n in range(settings.kafka_topic_partitions)]
    publisher = Publisher(settings)
    sessions = session_factory(engine)
    outbox = Outbox(metadata, "/bench")
    # Two workers of one group, one after the other: the second resumes where the first committed.
    first, second = (ConsumerWorker(SERVICE, spec, sessions, outbox, publisher, settings) for _ in range(2))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {SERVICE}"))
            await conn.run_sync(metadata.create_all)
        await ensure_topics(settings, [topic, *spec.dead_letter_topics(SERVICE)])
        await admin.start()
        records = school_records(topic, events)
        await publish_all(publisher, records, f"publishing {events:,} events", progress)
        first_s = await consume(first, lambda: first.processed, events, admin, partitions, events, "consuming", progress)
        await publish_all(publisher, records, f"publishing the {events:,} events again", progress)
        second_s = await consume(
            second, lambda: second.duplicates_skipped, events, admin, partitions, 2 * events, "consuming duplicates", progress
        )
        async with engine.connect() as conn:
            effect_rows = (await conn.execute(select(func.count()).select_from(effects))).scalar_one()
    finally:
        await admin.close()
        await publisher.stop()
        await engine.dispose()
    if effect_rows != events or second.processed != 0 or first.duplicates_skipped != 0:
        raise RuntimeError(f"{effect_rows} effects of {events} events; {second.processed} duplicates were processed again")
    return [BenchResult(
        "consumer_throughput",
        [
            Figure("events_per_s", "new events", round(events / first_s), "events/s"),
            Figure("duplicates_per_s", "redelivered events (skipped)", round(events / second_s), "events/s"),
            Figure(
                "deliveries_per_s_with_duplicates", f"all {2 * events:,} deliveries",
                round(2 * events / (first_s + second_s)), "deliveries/s",
            ),
            Figure("duplicates_skipped_pct", "duplicates skipped", round(100 * second.duplicates_skipped / events, 1), "%"),
        ],
        {
            "events": events, "deliveries_with_duplicates": 2 * events, "distinct_keys": KEYS,
            "topic_partitions": settings.kafka_topic_partitions, "consumer_batch_size": settings.ezone_consumer_batch_size,
            "kafka_fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms, "effect_rows": effect_rows,
        },
        ["Timed from the worker's partition assignment until its offsets are committed to the end of the topic."],
    )]
