"""The delivery guarantees of the shared kit, on the real broker and database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from ezone_kit import relay as relay_module
from ezone_kit.bus import OutgoingRecord, Publisher, ensure_topics
from ezone_kit.consumer import ConsumerSpec, ConsumerWorker, HandlerContext
from ezone_kit.db import service_metadata
from ezone_kit.dlq import read_dead_letters, replay_dead_letters
from ezone_kit.relay import OutboxRelay
from ezone_kit.settings import KitSettings
from ezone_kit.uow import Outbox
from ezone_kit.zones import zone_tables
from ezone_schemas import SchoolRegistered
from ezone_schemas.topics import dead_letter_topic
from sqlalchemy import Column, Integer, Table, Text, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from ezone.stack import EmbeddedBroker, wait_for
from tests.integration.service_instance import CONSUMER, handled_table, school_round
from tests.stack import new_database, stack_settings

SCHEMA = "kit_test"


@pytest.fixture
async def kit_env(postgres, broker, key_dir) -> AsyncIterator[dict]:
    """A private topic, a database with the kit's tables and a counter table whose updates are not idempotent."""
    async with kit_environment(postgres, broker, key_dir) as env:
        yield env


@pytest.fixture
async def own_broker(tmp_path) -> AsyncIterator[EmbeddedBroker]:
    """A broker to lose: restarting it loses every record (memory only), as a broker that lost its disk would."""
    instance = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
async def lossy_env(postgres, own_broker, key_dir) -> AsyncIterator[dict]:
    """As kit_env, on a broker of its own (`env["broker"]`), with topics of two partitions."""
    async with kit_environment(postgres, own_broker, key_dir, kafka_topic_partitions=2) as env:
        yield env | {"broker": own_broker}


@contextlib.asynccontextmanager
async def kit_environment(postgres, broker, key_dir, **overrides: object) -> AsyncIterator[dict]:  # noqa: ANN001
    database_url = await new_database(postgres)
    settings = KitSettings(**stack_settings(database_url, broker.bootstrap_servers, key_dir, **overrides))
    metadata = service_metadata(SCHEMA)
    counters = Table("counters", metadata, Column("code", Text, primary_key=True), Column("n", Integer, nullable=False))
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    topic = f"test.kit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic, dead_letter_topic(topic, "ezone.kit_test.counter")])
    publisher = Publisher(settings)
    try:
        yield {"settings": settings, "metadata": metadata, "counters": counters, "engine": engine, "topic": topic,
               "publisher": publisher}
    finally:
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


async def test_housekeeping_deletes_events_kept_past_their_retention_for_a_zone_that_never_registered(kit_env, caplog):
    engine, metadata = kit_env["engine"], kit_env["metadata"]
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: metadata.create_all(sync, tables=list(zone_tables(metadata))))
        await conn.execute(text(
            f"INSERT INTO {SCHEMA}.parked_events (consumer, zone_id, event_id, ce_type, envelope, data, parked_at)"
            " VALUES ('c', 'never', gen_random_uuid(), 't', '{}', '{}', now() - interval '31 days'),"
            " ('c', 'late', gen_random_uuid(), 't', '{}', '{}', now() - interval '29 days')"))
    settings = kit_env["settings"].model_copy(update={"ezone_parked_event_retention_days": 30})

    with caplog.at_level(logging.WARNING, logger="ezone.relay"):
        await OutboxRelay(engine, SCHEMA, kit_env["publisher"], settings).delete_expired()

    async with engine.connect() as conn:
        assert set((await conn.execute(text(f"SELECT zone_id FROM {SCHEMA}.parked_events"))).scalars()) == {"late"}
    assert f"{SCHEMA}: deleted 1 event(s) kept over 30 days for zones that never registered" in caplog.text


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


async def add_events(env: dict, codes: list[str]) -> list[uuid.UUID]:
    """Outbox rows for the env's topic, as a service's transaction writes them; their ids in order."""
    outbox = Outbox(env["metadata"], "/test")
    rows = outbox.rows([school_event(code) for code in codes])
    for row in rows:
        row["topic"] = env["topic"]
    async with env["engine"].begin() as conn:
        await outbox.insert_rows(conn, rows)
    return [row["id"] for row in rows]


async def event_ids_on(settings: KitSettings, topic: str) -> Counter:
    """How many times each event is on the topic now, every partition read from its start to its end (records that are
    not ezone events left out)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return Counter()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        ids: Counter = Counter()
        while any([await consumer.position(p) < ends[p] for p in partitions]):
            for records in (await consumer.getmany(timeout_ms=1_000)).values():
                ids.update(uuid.UUID(dict(r.headers)["ce_id"].decode())
                           for r in records if dict(r.headers).get("ce_id"))
        return ids
    finally:
        await consumer.stop()


async def unsent_count(env: dict) -> int:
    async with env["engine"].connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE sent_at IS NULL"))).scalar_one()


async def holds_every_event(env: dict, ids: list[uuid.UUID]) -> bool:
    """Every event sent, and on the broker now (some maybe twice: consumers skip what they already had)."""
    return await unsent_count(env) == 0 and set(ids) <= set(await event_ids_on(env["settings"], env["topic"]))


async def topic_partitions(settings: KitSettings, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def test_a_broker_that_lost_every_record_twice_in_a_row_gets_every_event_again_from_the_running_relay(lossy_env):
    env, broker = lossy_env, lossy_env["broker"]
    relay = OutboxRelay(env["engine"], SCHEMA, env["publisher"], env["settings"])
    task = asyncio.create_task(relay.run())
    try:
        ids = await add_events(env, [f"S{i}" for i in range(6)])
        await wait_for(lambda: holds_every_event(env, ids), 30, what="the first broker holding every event",
                   interval_s=0.5)

        # Lost with the first broker; nobody creates the topic again but the relay, with its partition count.
        broker.restart()
        ids += await add_events(env, ["NEW"])  # published to the second broker...
        await wait_for(lambda: holds_every_event(env, ids), 60, what="the second broker holding every event",
                   interval_s=0.5)
        broker.restart()  # ...and lost with it; nothing new is written, the relay notices by itself
        await wait_for(lambda: holds_every_event(env, ids), 60, what="the third broker holding every event",
                   interval_s=0.5)
        assert await topic_partitions(env["settings"], env["topic"]) == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert relay.republished >= 6 + 7


async def test_a_broker_with_another_cluster_id_gets_every_event_again_even_where_its_partitions_are_longer(
        lossy_env, monkeypatch):
    env, broker = lossy_env, lossy_env["broker"]
    relay = OutboxRelay(env["engine"], SCHEMA, env["publisher"], env["settings"])
    ids = await add_events(env, ["A", "B", "C"])
    assert await relay.publish_batch() == 3
    # Another cluster at the same address, whose partitions already hold more records than ours ever did.
    monkeypatch.setenv("CLUSTER_ID", "another-cluster")
    broker.restart()
    await ensure_topics(env["settings"], [env["topic"]])
    producer = AIOKafkaProducer(bootstrap_servers=env["settings"].kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for partition in (0, 1):
            for _ in range(5):
                await producer.send_and_wait(env["topic"], b"{}", key=b"other", partition=partition)
    finally:
        await producer.stop()
    await env["publisher"].reset()  # as the relay does after the failed publish a broker change brings

    assert await relay.republish_lost() == 3
    assert await relay.publish_batch() == 3
    assert await event_ids_on(env["settings"], env["topic"]) == Counter(ids)
    assert await relay.republish_lost() == 0


async def test_a_partition_that_lost_its_tail_gets_again_only_the_events_from_its_new_end_on(lossy_env):
    """As after an unclean leader election on Apache Kafka: the partition goes on from an earlier offset."""
    env, broker = lossy_env, lossy_env["broker"]
    settings = env["settings"].model_copy(update={"kafka_topic_partitions": 1})
    relay = OutboxRelay(env["engine"], SCHEMA, Publisher(settings), settings)
    env["topic"] = f"test.kit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [env["topic"]])
    ids = await add_events(env, [f"S{i}" for i in range(5)])
    assert await relay.publish_batch() == 5
    broker.restart()
    await ensure_topics(settings, [env["topic"]])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for _ in range(2):  # what the new leader had: two records
            await producer.send_and_wait(env["topic"], b"{}", key=b"other")
    finally:
        await producer.stop()
    await relay._publisher.reset()

    assert await relay.republish_lost() == 3
    assert await relay.publish_batch() == 3
    assert await event_ids_on(settings, env["topic"]) == Counter(ids[2:])
    await relay._publisher.stop()


async def test_an_offset_acknowledged_where_an_earlier_event_was_makes_the_relay_publish_that_partition_again(
        lossy_env, monkeypatch):
    """A broker lost and back between two of the relay's checks: its next acknowledgement reuses an offset."""
    env, broker = lossy_env, lossy_env["broker"]
    settings = env["settings"].model_copy(update={"kafka_topic_partitions": 1})
    relay = OutboxRelay(env["engine"], SCHEMA, Publisher(settings), settings)
    env["topic"] = f"test.kit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [env["topic"]])
    monkeypatch.setattr(relay_module, "BROKER_CHECK_EVERY_S", 3600.0)  # one check, at the first batch
    ids = await add_events(env, ["A", "B", "C"])
    assert await relay.publish_batch() == 3
    broker.restart()
    ids += await add_events(env, ["NEW"])
    with contextlib.suppress(Exception):
        await relay.publish_batch()  # the connection the broker took with it
    while await unsent_count(env):
        await relay.publish_batch()

    assert relay.republished == 3
    assert await event_ids_on(settings, env["topic"]) == Counter(ids)
    await relay._publisher.stop()


async def test_a_publisher_creates_a_missing_topic_with_the_configured_partitions_not_the_brokers_default(lossy_env):
    env = lossy_env
    topic = f"test.kit.{uuid.uuid4().hex[:8]}"
    await env["publisher"].publish([record(topic, school_event("A"))])
    await env["publisher"].publish_raw(f"{topic}.dlq", key=b"A", value=b"{}", headers=[])
    assert [await topic_partitions(env["settings"], t) for t in (topic, f"{topic}.dlq")] == [2, 2]


async def test_a_consumer_left_on_one_partition_of_a_topic_made_again_with_four_subscribes_again_and_reads_all(
        lossy_env):
    """The issue's broker loss: the group's rebalance after the topic came back with 4 partitions kept its member on
    partition 0 (Tansu answers the same member's rejoin with its old assignment)."""
    env = lossy_env
    env["topic"] = f"test.kit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(env["settings"].model_copy(update={"kafka_topic_partitions": 1}), [env["topic"]])
    attempts: Counter = Counter()
    worker = counting_worker(env, attempts, poison_codes=set())
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.assigned.wait(), 60)
        admin = AIOKafkaAdminClient(bootstrap_servers=env["settings"].kafka_bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([env["topic"]])
        finally:
            await admin.close()
        await ensure_topics(env["settings"].model_copy(update={"kafka_topic_partitions": 4}), [env["topic"]])
        codes = [f"S{i}" for i in range(40)]
        await env["publisher"].publish([record(env["topic"], school_event(code)) for code in codes])

        async def all_counted() -> bool:
            return await counter_values(env) == dict.fromkeys(codes, 1)

        await wait_for(all_counted, 120, what="every event counted", interval_s=0.5)
        assert {tp.partition for tp in worker._consumer.assignment()} == {0, 1, 2, 3}
        assert worker.resubscribed >= 1
    finally:
        task.cancel()
        await worker.stop()


async def group_members(settings: KitSettings, group: str) -> int:
    """How many members the group has once it is stable (0 while it rebalances)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [described] = response.to_object()["groups"]
        return len(described["members"]) if described["state"] == "Stable" else 0
    finally:
        await admin.close()


async def test_two_instances_on_four_partitions_one_killed_mid_load_handle_every_event_once_in_order_per_school(
        lossy_env):
    """Each instance a process with a relay and a consumer, as a service's; one is SIGKILLed while events flow."""
    env = lossy_env
    settings = env["settings"].model_copy(update={"kafka_topic_partitions": 4})
    env["topic"] = f"test.kit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [env["topic"]])
    handled = handled_table(env["metadata"])
    async with env["engine"].begin() as conn:
        await conn.run_sync(lambda sync: handled.create(sync))
    environ = {**os.environ, **{name.upper(): str(value).lower() if isinstance(value, bool) else str(value)
                                for name, value in settings.model_dump().items() if value is not None}}
    instances = [subprocess.Popen([sys.executable, "-m", "tests.integration.service_instance", SCHEMA, env["topic"]],
                                  cwd=Path(__file__).resolve().parents[2], env=environ) for _ in range(2)]
    schools, rounds = [f"S{i:02d}" for i in range(40)], 11

    async def handled_count() -> int:
        async with env["engine"].connect() as conn:
            return (await conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.handled"))).scalar_one()

    try:
        group = f"ezone.{SCHEMA}.{CONSUMER}"
        async def both_members() -> bool:
            return await group_members(settings, group) == 2

        await wait_for(both_members, 120, what="both instances in the group", interval_s=0.5)

        async def load() -> None:
            outbox = Outbox(env["metadata"], "/test")
            for seq in range(rounds):  # the last round follows any redelivery on every partition
                rows = outbox.rows([school_event(code).model_copy(update={"name": school_round(code, seq)})
                                    for code in schools])
                for row in rows:
                    row["topic"] = env["topic"]
                async with env["engine"].begin() as conn:
                    await outbox.insert_rows(conn, rows)
                await asyncio.sleep(0.3)  # pacing: a load that goes on while an instance dies

        async def two_rounds_handled() -> bool:
            return await handled_count() >= 2 * len(schools)

        loading = asyncio.create_task(load())
        await wait_for(two_rounds_handled, 120, what="two rounds handled", interval_s=0.05)
        instances[0].kill()
        await loading

        async def all_handled() -> bool:
            return await handled_count() >= rounds * len(schools)

        await wait_for(all_handled, 180, what="every event handled", interval_s=0.5)
        async with env["engine"].connect() as conn:
            rows = (await conn.execute(text(f"SELECT code, seq FROM {SCHEMA}.handled ORDER BY n"))).all()
    finally:
        for instance in instances:
            instance.kill()
            instance.wait(10)

    assert Counter((code, seq) for code, seq in rows) == {(code, seq): 1 for code in schools for seq in range(rounds)}
    order: dict[str, list[int]] = defaultdict(list)
    for code, seq in rows:
        order[code].append(seq)
    assert order == {code: list(range(rounds)) for code in schools}
    assert await unsent_count(env) == 0
