"""relay_throughput and memory: how fast OutboxRelay empties a full outbox (one relay; two; one whose
planner statistics predate the backlog), against the broker client alone; and how much memory the
process needed meanwhile."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import psutil
from aiokafka import AIOKafkaProducer
from ezone_kit.bus import OutgoingRecord, Publisher, ensure_topics, producer_config
from ezone_kit.db import create_engine
from ezone_kit.relay import OutboxRelay, outbox_depth
from ezone_kit.settings import KitSettings
from ezone_kit.telemetry import instrument_engine
from ezone_kit.uow import Outbox
from ezone_schemas import SchoolRegistered
from rich.progress import Progress
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ezone.services import SERVICES
from tests.stack import new_database

from .environment import BenchEnvironment
from .progress import wait_for_count
from .report import BenchResult, Figure

PLANS = next(entry for entry in SERVICES if entry.name == "plans").definition
INSERT_CHUNK = 5_000
MB = 2**20

# (column, PostgreSQL array type) of what Outbox.rows() produces; the payload goes as JSON text.
OUTBOX_COLUMNS = (
    ("id", "uuid"), ("topic", "text"), ("key", "text"), ("ce_type", "text"), ("ce_source", "text"),
    ("ce_time", "timestamptz"), ("payload", "text"), ("traceparent", "text"), ("tracestate", "text"),
)


def bulk_insert_statement(schema: str):
    """One INSERT per chunk from unnest(): a VALUES list of 5,000 rows would need 45,000 bind
    parameters, over asyncpg's limit of 32,767."""
    names = ", ".join(name for name, _ in OUTBOX_COLUMNS)
    arrays = ", ".join(f"CAST(:{name} AS {sql_type}[])" for name, sql_type in OUTBOX_COLUMNS)
    selected = names.replace("payload", "payload::jsonb")
    return text(f"INSERT INTO {schema}.outbox ({names}) SELECT {selected} FROM unnest({arrays}) AS r({names})")


def outbox_row_chunks(outbox: Outbox, topic: str, rows: int, keys: int) -> Iterator[list[dict]]:
    """Rows as a service writes them, `keys` schools taking turns, a chunk at a time so that the
    memory figure is the relay's rather than the test data's."""
    schools = [uuid.uuid5(uuid.NAMESPACE_URL, f"bench-school-{n}") for n in range(keys)]
    now = datetime.now(UTC)
    for start in range(0, rows, INSERT_CHUNK):
        events = [
            SchoolRegistered(
                zone_id="bench", school_id=schools[n % keys], code=f"S{n % keys:04d}", name=f"School {n % keys} v{n}",
                grade_span="6-8", enrollment=500, registered_at=now,
            )
            for n in range(start, min(rows, start + INSERT_CHUNK))
        ]
        chunk = outbox.rows(events)
        for row in chunk:
            row["topic"] = topic
        yield chunk


def outgoing_record(row: dict) -> OutgoingRecord:
    """What the relay turns an outbox row into."""
    return OutgoingRecord(
        id=row["id"], topic=row["topic"], key=row["key"], ce_type=row["ce_type"], ce_source=row["ce_source"],
        ce_time=row["ce_time"], value=orjson.dumps(row["payload"]),
    )


@dataclass
class RssSampler:
    """Peak resident memory of this process, per phase, sampled every 20 ms."""

    phase: str = "setup"
    peaks_mb: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        process = psutil.Process()
        while True:
            rss_mb = process.memory_info().rss / MB
            self.peaks_mb[self.phase] = max(rss_mb, self.peaks_mb.get(self.phase, 0.0))
            await asyncio.sleep(0.02)


async def analyze_outbox(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"ANALYZE {PLANS.schema}.outbox"))


async def fill_outbox(engine: AsyncEngine, outbox: Outbox, topic: str, rows: int, keys: int, progress: Progress) -> float:
    """Replace the outbox's contents with `rows` unsent rows, so that every round starts from the
    same backlog; return rows inserted per second. The planner's statistics are left as they were."""
    schema = PLANS.schema
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {schema}.outbox"))
    statement = bulk_insert_statement(schema)
    bar = progress.add_task(f"inserting {rows:,} outbox rows", total=rows)
    started = asyncio.get_running_loop().time()
    for chunk in outbox_row_chunks(outbox, topic, rows, keys):
        params = {name: [row[name] for row in chunk] for name, _ in OUTBOX_COLUMNS}
        params["payload"] = [orjson.dumps(payload).decode() for payload in params["payload"]]
        async with engine.begin() as conn:
            await conn.execute(statement, params)
        progress.advance(bar, len(chunk))
    elapsed = asyncio.get_running_loop().time() - started
    progress.remove_task(bar)
    return rows / elapsed


async def relay_until_empty(
    engine: AsyncEngine, settings: KitSettings, relay_count: int, rows: int, progress: Progress
) -> tuple[float, list[int]]:
    """Run `relay_count` relays until every row is sent; return rows per second and each relay's share."""
    publishers = [Publisher(settings) for _ in range(relay_count)]
    for publisher in publishers:
        await publisher.start()  # connecting to the broker is not relaying
    relays = [OutboxRelay(engine, PLANS.schema, publisher, settings) for publisher in publishers]
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        await wait_for_count(
            progress, f"{relay_count} relay(s) publishing", lambda: sum(r.published for r in relays), rows,
            timeout_s=max(60.0, rows / 100),
        )
        elapsed = loop.time() - started
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for publisher in publishers:
            await publisher.stop()
    left = await outbox_depth(engine, PLANS.schema)
    if left:
        raise RuntimeError(f"{left} outbox rows are still unsent after the relays published {rows}")
    return rows / elapsed, [relay.published for relay in relays]


async def produce_raw(settings: KitSettings, chunks: Iterator[list[dict]], rows: int, progress: Progress) -> float:
    """The ceiling: the same records through a bare AIOKafkaProducer, no database, no spans; rows per second."""
    producer = AIOKafkaProducer(**producer_config(settings))
    await producer.start()
    bar = progress.add_task("raw aiokafka produce", total=rows)
    elapsed = 0.0
    try:
        for chunk in chunks:
            records = [outgoing_record(row) for row in chunk]
            started = asyncio.get_running_loop().time()
            futures = [
                await producer.send(r.topic, r.value, key=r.key.encode(), headers=r.headers({})) for r in records
            ]
            await asyncio.gather(*futures)
            elapsed += asyncio.get_running_loop().time() - started
            progress.advance(bar, len(records))
    finally:
        progress.remove_task(bar)
        await producer.stop()
    return rows / elapsed


async def publish_without_database(settings: KitSettings, chunks: Iterator[list[dict]], rows: int, progress: Progress) -> float:
    """The relay minus the database: Publisher.publish (spans, headers, wait for acks) one relay batch at a time."""
    publisher = Publisher(settings)
    await publisher.start()
    batch_size = settings.ezone_relay_batch_size
    bar = progress.add_task("Publisher.publish, no database", total=rows)
    elapsed = 0.0
    try:
        for chunk in chunks:
            records = [outgoing_record(row) for row in chunk]
            started = asyncio.get_running_loop().time()
            for start in range(0, len(records), batch_size):
                await publisher.publish(records[start : start + batch_size])
            elapsed += asyncio.get_running_loop().time() - started
            progress.advance(bar, len(records))
    finally:
        progress.remove_task(bar)
        await publisher.stop()
    return rows / elapsed


def broker_rss_mb() -> float | None:
    """The Tansu broker is our child; it keeps every record in memory."""
    brokers = [child for child in psutil.Process().children() if "tansu" in child.name()]
    return brokers[0].memory_info().rss / MB if brokers else None


async def run(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    rows, keys = env.sizes.relay_rows, env.sizes.relay_keys
    rss_before_mb = psutil.Process().memory_info().rss / MB
    sampler = RssSampler()
    sampling = asyncio.create_task(sampler.run())
    try:
        database_url = await new_database(env.postgres)
        settings = env.settings(database_url, kafka_topic_partitions=4)  # as measured before the embedded stack went to one
        topic = f"bench.relay.{uuid.uuid4().hex[:8]}"
        await ensure_topics(settings, [topic])
        engine = create_engine(settings)
        instrument_engine(engine)  # as Kit.start does: a service pays for a span per SQL statement
        outbox = Outbox(PLANS.metadata, PLANS.source)
        async with engine.begin() as conn:
            # Statistics change only when a round asks for it, not when autovacuum happens to pass.
            await conn.execute(text(f"ALTER TABLE {PLANS.schema}.outbox SET (autovacuum_enabled = false)"))
        try:
            sampler.phase = "insert"
            insert_rate = await fill_outbox(engine, outbox, topic, rows, keys, progress)
            await analyze_outbox(engine)
            sampler.phase = "relay"
            one_relay_rate, _ = await relay_until_empty(engine, settings, 1, rows, progress)
            sampler.phase = "insert"
            await fill_outbox(engine, outbox, topic, rows, keys, progress)
            await analyze_outbox(engine)
            sampler.phase = "relay"
            two_relays_rate, shares = await relay_until_empty(engine, settings, 2, rows, progress)
            # As after a broker outage: the statistics were taken when every row was sent, then a backlog built up.
            await analyze_outbox(engine)
            sampler.phase = "insert"
            await fill_outbox(engine, outbox, topic, rows, keys, progress)
            sampler.phase = "relay"
            stale_statistics_rate, _ = await relay_until_empty(engine, settings, 1, rows, progress)
            sampler.phase = "ceiling"
            raw_rate = await produce_raw(settings, outbox_row_chunks(outbox, topic, rows, keys), rows, progress)
            publisher_rate = await publish_without_database(
                settings, outbox_row_chunks(outbox, topic, rows, keys), rows, progress
            )
        finally:
            await engine.dispose()
    finally:
        sampling.cancel()
    batch_size = settings.ezone_relay_batch_size
    relay_result = BenchResult(
        "relay_throughput",
        [
            Figure("one_relay_rows_per_s", "1 relay", round(one_relay_rate), "rows/s"),
            Figure("two_relays_rows_per_s", "2 relays, one process", round(two_relays_rate), "rows/s"),
            Figure(
                "one_relay_stale_statistics_rows_per_s", "1 relay, statistics predate the backlog",
                round(stale_statistics_rate), "rows/s",
            ),
            Figure("publisher_only_rows_per_s", "Publisher.publish, no DB", round(publisher_rate), "rows/s"),
            Figure("raw_aiokafka_rows_per_s", "raw aiokafka send (ceiling)", round(raw_rate), "rows/s"),
            Figure("outbox_insert_rows_per_s", f"outbox insert, {INSERT_CHUNK:,} per statement", round(insert_rate), "rows/s"),
            Figure("relay_batch_size", "relay batch size", batch_size, "rows"),
        ],
        {
            "rows_per_round": rows, "distinct_keys": keys, "relay_batch_size": batch_size,
            "topic_partitions": settings.kafka_topic_partitions, "kafka_linger_ms": settings.kafka_linger_ms,
            "producer_acks": "all",
        },
        [
            "Both relays run on this process's one event loop: the second overlaps its database and broker waits"
            " with the first's but adds no CPU.",
            f"Of the 2-relay round, the relays published {shares[0]:,} and {shares[1]:,} rows.",
            "Each round starts with exactly `rows_per_round` unsent rows in the outbox, analyzed once filled;"
            " in the last round the statistics are those of the drained outbox (every row sent).",
        ],
    )
    memory_figures = [
        Figure("rss_before_mb", "RSS before (stack imported)", round(rss_before_mb, 1), "MB"),
        Figure("peak_rss_relaying_mb", "peak RSS while relaying", round(sampler.peaks_mb["relay"], 1), "MB"),
        Figure("peak_rss_mb", "peak RSS, whole benchmark", round(max(sampler.peaks_mb.values()), 1), "MB"),
    ]
    broker_mb = broker_rss_mb()
    if broker_mb is not None:
        memory_figures.append(Figure("broker_rss_after_mb", "Tansu broker RSS after it", round(broker_mb, 1), "MB"))
    peaks_by_phase_mb = {phase: round(mb, 1) for phase, mb in sampler.peaks_mb.items()}
    memory_result = BenchResult(
        "memory", memory_figures, {"during": "relay_throughput", "sampled_every_ms": 20, "peaks_by_phase_mb": peaks_by_phase_mb}
    )
    return [relay_result, memory_result]
