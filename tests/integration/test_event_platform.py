"""The delivery guarantees of the shared kit, on the real broker and database."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer
from ezone_kit.bus import OutgoingRecord, Publisher, ensure_topics
from ezone_kit.consumer import ConsumerSpec, ConsumerWorker, HandlerContext
from ezone_kit.db import service_metadata
from ezone_kit.dlq import read_dead_letters, replay_dead_letters
from ezone_kit.relay import OutboxRelay
from ezone_kit.settings import KitSettings
from ezone_kit.uow import Outbox
from ezone_schemas import SchoolRegistered
from ezone_schemas.topics import dead_letter_topic
from sqlalchemy import Column, Integer, Table, Text, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from ezone.stack import wait_for
from tests.stack import new_database, stack_settings

SCHEMA = "kit_test"


@pytest.fixture
async def kit_env(postgres, broker, key_dir) -> AsyncIterator[dict]:
    """A private topic, a database with the kit's tables and a counter table whose updates are not idempotent."""
    database_url = await new_database(postgres)
    settings = KitSettings(**stack_settings(database_url, broker.bootstrap_servers, key_dir))
    metadata = service_metadata(SCHEMA)
    counters = Table("counters", metadata, Column("code", Text, primary_key=True), Column("n", Integer, nullable=False))
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    topic = f"test.kit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic, dead_letter_topic(topic, "ezone.kit_test.counter")])
    publisher = Publisher(settings)
    yield {"settings": settings, "metadata": metadata, "counters": counters, "engine": engine, "topic": topic, "publisher": publisher}
    await publisher.stop()
    await engine.dispose()


def school_event(code: str) -> SchoolRegistered:
    return SchoolRegistered(
        zone_id="kit", school_id=uuid.uuid5(uuid.NAMESPACE_URL, code), code=code, name=code, grade_span="6-8",
        registered_at=datetime.now(UTC),
    )


def record(topic: str, event: SchoolRegistered, event_id: uuid.UUID | None = None) -> OutgoingRecord:
    return OutgoingRecord(
        id=event_id or uuid.uuid4(), topic=topic, key=event.partition_key(), ce_type=event.ce_type, ce_source="/test",
        ce_time=datetime.now(UTC), value=event.model_dump_json().encode(),
    )


def counting_worker(env: dict, attempts_seen: Counter, poison_codes: set[str]) -> ConsumerWorker:
    counters = env["counters"]

    async def count(ctx: HandlerContext) -> None:
        attempts_seen[ctx.event.code] += 1
        if ctx.event.code in poison_codes:
            raise ValueError(f"cannot handle {ctx.event.code}")
        updated = await ctx.session.execute(update(counters).where(counters.c.code == ctx.event.code).values(n=counters.c.n + 1))
        if updated.rowcount == 0:
            await ctx.session.execute(counters.insert().values(code=ctx.event.code, n=1))

    from sqlalchemy.ext.asyncio import async_sessionmaker

    spec = ConsumerSpec(name="counter", topics=(env["topic"],), handlers={SchoolRegistered: count})
    return ConsumerWorker(
        "kit_test", spec, async_sessionmaker(env["engine"], expire_on_commit=False),
        Outbox(env["metadata"], "/test"), env["publisher"], env["settings"],
    )


async def counter_values(env: dict) -> dict[str, int]:
    async with env["engine"].connect() as conn:
        return dict((await conn.execute(select(env["counters"].c.code, env["counters"].c.n))).all())


async def test_same_event_delivered_twice_has_one_effect(kit_env):
    attempts: Counter = Counter()
    worker = counting_worker(kit_env, attempts, poison_codes=set())
    task = asyncio.create_task(worker.run())
    try:
        event_id = uuid.uuid4()
        duplicate = record(kit_env["topic"], school_event("A"), event_id)
        await kit_env["publisher"].publish([duplicate, duplicate])

        async def both_seen() -> bool:
            return worker.processed + worker.duplicates_skipped == 2

        await wait_for(both_seen, 20, what="both deliveries consumed")
        assert await counter_values(kit_env) == {"A": 1}
        assert attempts["A"] == 1
        assert worker.duplicates_skipped == 1
    finally:
        task.cancel()
        await worker.stop()


async def test_poison_event_goes_to_the_dlq_after_n_attempts_and_later_events_on_its_partition_are_processed(kit_env):
    attempts: Counter = Counter()
    poison = {"POISON"}
    worker = counting_worker(kit_env, attempts, poison_codes=poison)
    task = asyncio.create_task(worker.run())
    try:
        topic = kit_env["topic"]
        poison_event = school_event("POISON")
        # Same key as the poison record, so the later events sit behind it on the same partition.
        later = [record(topic, school_event("POISON").model_copy(update={"code": f"B{i}"})) for i in range(3)]
        await kit_env["publisher"].publish([record(topic, poison_event), *later])

        async def later_processed() -> bool:
            return await counter_values(kit_env) == {"B0": 1, "B1": 1, "B2": 1}

        await wait_for(later_processed, 20, what="the events after the poison one")
        max_attempts = kit_env["settings"].ezone_consumer_max_attempts
        assert attempts["POISON"] == max_attempts

        dead = await read_dead_letters(kit_env["settings"], [dead_letter_topic(topic, worker.group)])
        assert len(dead) == 1
        assert dead[0].ce_type == poison_event.ce_type
        assert dead[0].attempts == max_attempts
        assert "cannot handle POISON" in dead[0].error
        assert dead[0].original_topic == topic

        # Once the cause is fixed, a replay processes it, once.
        poison.clear()
        replayed = await replay_dead_letters(kit_env["settings"], [dead_letter_topic(topic, worker.group)])
        assert replayed == 1

        async def poison_processed() -> bool:
            return (await counter_values(kit_env)).get("POISON") == 1

        await wait_for(poison_processed, 20, what="the replayed event")
    finally:
        task.cancel()
        await worker.stop()


@pytest.mark.parametrize(("key", "headers", "why"), [
    (b"\xff\xfe school", None, "the key is not UTF-8"),
    (None, None, "the record has no key"),
    (b"S-1", [("ce_id", None)], "is not a UUID"),
], ids=["non-utf8-key", "null-key", "header-without-value"])
async def test_an_unreadable_record_goes_to_the_dlq_and_the_next_event_on_its_partition_is_processed(
        kit_env, key, headers, why):
    attempts: Counter = Counter()
    worker = counting_worker(kit_env, attempts, poison_codes=set())
    task = asyncio.create_task(worker.run())
    try:
        topic = kit_env["topic"]
        good = record(topic, school_event("AFTER"))
        valid_headers = [(name, value) for name, value in good.headers({}) if name != "ce_id"]
        raw_headers = [(name, value) for name, value in (headers or [])] + valid_headers + (
            [] if headers else [("ce_id", str(uuid.uuid4()).encode())])
        # One partition: the unreadable record sits in front of the good one.
        await kit_env["publisher"].publish_raw(topic, key=key, value=good.value, headers=raw_headers)
        await kit_env["publisher"].publish([good])

        async def after_processed() -> bool:
            return await counter_values(kit_env) == {"AFTER": 1}

        await wait_for(after_processed, 20, what="the event after the unreadable record")
        dead = await read_dead_letters(kit_env["settings"], [dead_letter_topic(topic, worker.group)])
        assert len(dead) == 1 and why in dead[0].error, dead
        assert dead[0].raw_key == key and dead[0].attempts == 1
    finally:
        task.cancel()
        await worker.stop()


async def test_two_relays_running_publish_every_event_once_and_in_order_per_school(kit_env):
    topic, engine = kit_env["topic"], kit_env["engine"]
    outbox = Outbox(kit_env["metadata"], "/test")
    schools = [f"S{i}" for i in range(400)]
    rows = []
    for round_ in range(5):
        for code in schools:
            rows += outbox.rows([school_event(code).model_copy(update={"name": f"{code}-{round_}"})])
    for row in rows:
        row["topic"] = topic
    async with engine.begin() as conn:
        await outbox.insert_rows(conn, rows)  # one statement: its rows must keep their order

    settings = kit_env["settings"].model_copy(update={"ezone_relay_batch_size": 37})
    publishers = [Publisher(settings), Publisher(settings)]
    relays = [OutboxRelay(engine, SCHEMA, publisher, settings) for publisher in publishers]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        async def all_sent() -> bool:
            async with engine.connect() as conn:
                return (await conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE sent_at IS NULL"))).scalar() == 0

        await wait_for(all_sent, 60, what="every outbox row sent")
        assert all(relay.published > 0 for relay in relays), "both relays should have taken part"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for publisher in publishers:
            await publisher.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    received: list = []
    try:
        while len(received) < len(rows):
            batch = await consumer.getmany(timeout_ms=2_000)
            if not batch:
                break
            for records in batch.values():
                received.extend(records)
    finally:
        await consumer.stop()

    ids = Counter(dict(r.headers)["ce_id"].decode() for r in received)
    assert len(ids) == len(rows) and set(ids.values()) == {1}, "some event was published twice or not at all"
    rounds_by_school: dict[str, list[int]] = defaultdict(list)
    for r in sorted(received, key=lambda r: (r.partition, r.offset)):
        name = SchoolRegistered.model_validate_json(r.value).name
        code, round_ = name.rsplit("-", 1)
        rounds_by_school[code].append(int(round_))
    assert all(rounds == sorted(rounds) for rounds in rounds_by_school.values()), "a school's events were reordered"


async def test_relay_holds_back_a_school_whose_older_event_another_relay_holds_and_publishes_the_rest(kit_env):
    topic, engine = kit_env["topic"], kit_env["engine"]
    outbox = Outbox(kit_env["metadata"], "/test")
    # In order: A's first, B's first, A's second, C's first, C's second, D's first.
    rows = outbox.rows([school_event(code) for code in ("A", "B", "A", "C", "C", "D")])
    for row in rows:
        row["topic"] = topic
    async with engine.begin() as conn:
        await outbox.insert_rows(conn, rows)
    # Another relay holds A's first event and C's second: A's second must wait, C's first is older than what it holds.
    held_elsewhere = [rows[0]["id"], rows[4]["id"]]

    async def unsent() -> list[uuid.UUID]:
        async with engine.connect() as conn:
            return list((await conn.execute(text(f"SELECT id FROM {SCHEMA}.outbox WHERE sent_at IS NULL ORDER BY seq"))).scalars())

    relay = OutboxRelay(engine, SCHEMA, kit_env["publisher"], kit_env["settings"])
    try:
        async with engine.begin() as other_relay:
            await other_relay.execute(text(f"SELECT FROM {SCHEMA}.outbox WHERE id = ANY(:ids) FOR UPDATE"),
                                      {"ids": held_elsewhere})
            assert await relay.publish_batch() == 3  # B's, C's first and D's
            assert await unsent() == [rows[0]["id"], rows[2]["id"], rows[4]["id"]]
            assert relay._held_elsewhere, "the relay should look again soon for the school it left"
        assert await relay.publish_batch() == 3
        assert await unsent() == []
    finally:
        await relay._close_connection()


async def test_relay_claim_reads_about_a_batch_of_rows_when_the_statistics_predate_the_backlog(kit_env):
    """As after a broker outage: the planner's statistics were taken while every row was sent. Rows read, not time:
    a plan that checks each key against every unsent row read 250,000 here (and 25 million at 50,000 rows)."""
    engine, batch = kit_env["engine"], 50
    outbox = Outbox(kit_env["metadata"], "/test")

    async def fill() -> None:
        rows = outbox.rows([school_event(f"S{n % 100}") for n in range(5_000)])
        for row in rows:
            row["topic"] = kit_env["topic"]
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {SCHEMA}.outbox"))
            await outbox.insert_rows(conn, rows)

    async with engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {SCHEMA}.outbox SET (autovacuum_enabled = false)"))
    await fill()
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE {SCHEMA}.outbox SET sent_at = now()"))
        await conn.execute(text(f"ANALYZE {SCHEMA}.outbox"))
    await fill()

    relay = OutboxRelay(engine, SCHEMA, kit_env["publisher"], kit_env["settings"])
    connection = await relay._connect()
    try:
        async with connection.transaction():
            plan = json.loads(await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {relay._claim}", batch))
    finally:
        await relay._close_connection()

    def outbox_rows_read(node: dict) -> float:
        own = node["Actual Rows"] * node["Actual Loops"] if node.get("Relation Name") == "outbox" else 0
        return own + sum(outbox_rows_read(child) for child in node.get("Plans", ()))

    assert outbox_rows_read(plan[0]["Plan"]) <= 3 * batch


async def test_relay_deletes_sent_events_after_the_retention_period_and_keeps_the_rest(kit_env):
    engine, outbox = kit_env["engine"], Outbox(kit_env["metadata"], "/test")
    rows = outbox.rows([school_event(code) for code in ("OLD", "RECENT", "UNSENT")])
    async with engine.begin() as conn:
        await conn.execute(outbox.table.insert(), rows)
        await conn.execute(text(f"UPDATE {SCHEMA}.outbox SET sent_at = now() - interval '8 days' WHERE key = :k"),
                           {"k": rows[0]["key"]})
        await conn.execute(text(f"UPDATE {SCHEMA}.outbox SET sent_at = now() - interval '1 day' WHERE key = :k"),
                           {"k": rows[1]["key"]})
    settings = kit_env["settings"].model_copy(update={"ezone_outbox_retention_hours": 7 * 24})
    deleted = await OutboxRelay(engine, SCHEMA, kit_env["publisher"], settings).delete_expired()
    assert deleted == 1
    async with engine.connect() as conn:
        kept = set((await conn.execute(text(f"SELECT key FROM {SCHEMA}.outbox"))).scalars())
    assert kept == {rows[1]["key"], rows[2]["key"]}


async def test_housekeeping_forgets_idempotency_keys_after_their_retention_period(kit_env):
    engine = kit_env["engine"]
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO {SCHEMA}.idempotency_keys (scope, key, request_digest, created_at)"
                                " VALUES ('s', 'old', 'd', now() - interval '2 days'), ('s', 'new', 'd', now())"))
    settings = kit_env["settings"].model_copy(update={"ezone_idempotency_retention_hours": 24})
    await OutboxRelay(engine, SCHEMA, kit_env["publisher"], settings).delete_expired()
    async with engine.connect() as conn:
        assert set((await conn.execute(text(f"SELECT key FROM {SCHEMA}.idempotency_keys"))).scalars()) == {"new"}


async def test_with_a_single_attempt_allowed_a_failing_event_goes_straight_to_the_dlq_and_the_rest_are_processed(kit_env):
    kit_env["settings"] = kit_env["settings"].model_copy(update={"ezone_consumer_max_attempts": 1})
    attempts: Counter = Counter()
    worker = counting_worker(kit_env, attempts, poison_codes={"POISON"})
    task = asyncio.create_task(worker.run())
    try:
        topic = kit_env["topic"]
        events = [school_event("POISON"), *(school_event("POISON").model_copy(update={"code": f"C{i}"}) for i in range(3))]
        await kit_env["publisher"].publish([record(topic, e) for e in events])

        async def settled() -> bool:
            return worker.dead_lettered == 1 and worker.processed == 3

        await wait_for(settled, 20, what="one dead letter and three processed events")
        assert attempts["POISON"] == 1
        assert await counter_values(kit_env) == {"C0": 1, "C1": 1, "C2": 1}
    finally:
        task.cancel()
        await worker.stop()
