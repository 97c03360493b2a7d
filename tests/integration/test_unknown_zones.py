"""A contract-valid event naming a zone that does not exist is skipped and counted in every consumer that projects
per-zone data, never projected; the next event on its partition is handled. Where a zone's first events can come
before its zone.registered (services that learn zones from events), the skipped events wait for it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

from aiokafka.partitioner import DefaultPartitioner
from ezone_kit.bus import OutgoingRecord
from ezone_kit.consumer import ConsumerSpec, ConsumerWorker, HandlerContext
from ezone_kit.dlq import read_dead_letters, replay_dead_letters
from ezone_kit.uow import Outbox
from ezone_kit.zones import ProjectedZones, zone_tables
from ezone_schemas import Event, PartnerVettingChanged, ReviewCompleted, SchoolRegistered, ZoneRegistered
from ezone_schemas.topics import dead_letter_topic
from sqlalchemy.ext.asyncio import async_sessionmaker

from ezone.stack import wait_for
from tests.events import publish_as
from tests.helpers import register_school, register_zone, scalar, school_code, wait_for_count
from tests.integration.test_event_platform import kit_environment
from tests.integration.test_metrics import points

PROJECTING = {"results": "results", "catalog": "catalog", "notifications": "notifications"}  # consumer group: schema


def registration(zone_id: str, school_id: uuid.UUID) -> SchoolRegistered:
    return SchoolRegistered(zone_id=zone_id, school_id=school_id, code=school_code(), name="Forged Middle",
                            grade_span="6-8", enrollment=300, registered_at=datetime.now(UTC))


def on_the_same_partition(stack, school: uuid.UUID) -> uuid.UUID:  # noqa: ANN001
    """Another school id whose events go to the same partition as `school`'s."""
    partitions = list(range(stack.settings().kafka_topic_partitions))

    def partition(key: uuid.UUID) -> int:
        return DefaultPartitioner()(str(key).encode(), partitions, partitions)

    while partition(other := uuid.uuid4()) != partition(school):
        pass
    return other


def review(zone_id: str, school_id: str) -> ReviewCompleted:
    return ReviewCompleted(review_id=uuid.uuid4(), zone_id=zone_id, school_id=school_id, school_year="2024-25",
                           subject="MATH", version=1, status="meeting", completed_at=datetime.now(UTC))


async def consumed(stack, schema: str, event_ids: list[uuid.UUID]) -> None:  # noqa: ANN001
    await wait_for_count(stack, f"SELECT count(*) FROM {schema}.inbox WHERE event_id = ANY(:ids)", len(event_ids),
                         ids=event_ids)


def unknown_zone_counts(metric_reader) -> dict[str, int]:  # noqa: ANN001
    return {p.attributes["group"]: p.value for p in points(metric_reader, "ezone.consumer.events")
            if p.attributes["outcome"] == "unknown_zone"}


async def test_a_school_of_a_zone_that_does_not_exist_is_skipped_counted_and_kept_and_the_next_event_is_handled(
    zone_stack, zone_id, metric_reader, caplog
):
    await register_zone(zone_stack, zone_id)
    ghost = f"{zone_id}-ghost"
    forged = uuid.uuid4()
    school = on_the_same_partition(zone_stack, forged)
    before = unknown_zone_counts(metric_reader)
    with caplog.at_level(logging.WARNING, logger="ezone.consumer"):
        ids = await publish_as(zone_stack, registration(ghost, forged), registration(zone_id, school),
                               source="/ezone/plans")
        for schema in PROJECTING.values():
            await consumed(zone_stack, schema, ids)

    for service, schema in PROJECTING.items():
        group = f"ezone.{service}.events"
        assert await scalar(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :s", s=forged) == 0, service
        assert await scalar(zone_stack, f"SELECT zone_id FROM {schema}.schools WHERE id = :s", s=school) == zone_id
        assert await scalar(zone_stack, f"SELECT count(*) FROM {schema}.parked_events WHERE zone_id = :z "
                                        "AND event_id = :e", z=ghost, e=ids[0]) == 1, service
        assert unknown_zone_counts(metric_reader).get(group, 0) > before.get(group, 0), service
    logged = [r.getMessage() for r in caplog.records if repr(ghost) in r.getMessage()]
    assert {service for service in PROJECTING if any(f"ezone.{service}.events" in line for line in logged)} == {
        *PROJECTING}


async def test_the_events_kept_for_a_zone_are_handled_once_its_registration_arrives(zone_stack, zone_id):
    school = uuid.uuid4()
    # Partitions are consumed independently: a zone's first school can come before the zone does.
    [early] = await publish_as(zone_stack, registration(zone_id, school), source="/ezone/plans")
    for schema in PROJECTING.values():
        await consumed(zone_stack, schema, [early])
        assert await scalar(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :s", s=school) == 0

    await register_zone(zone_stack, zone_id)

    for schema in PROJECTING.values():
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :s AND zone_id = :z", 1,
                             s=school, z=zone_id)
        assert await scalar(zone_stack, f"SELECT count(*) FROM {schema}.parked_events WHERE zone_id = :z",
                            z=zone_id) == 0
    # The zone's own events since go straight through.
    later = await register_school(zone_stack, zone_id)
    for schema in PROJECTING.values():
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :s", 1, s=later["id"])


async def test_the_plans_service_skips_and_counts_events_of_zones_it_does_not_have(zone_stack, zone_id, metric_reader):
    await register_zone(zone_stack, zone_id)
    school = (await register_school(zone_stack, zone_id))["id"]
    ghost = f"{zone_id}-ghost"
    partner = uuid.uuid4()
    before = unknown_zone_counts(metric_reader).get("ezone.plans.events", 0)

    vetting = PartnerVettingChanged(zone_id=ghost, partner_id=partner, name="Nobody's Partner", status="vetted",
                                    expires_on=date(2030, 6, 30), changed_at=datetime.now(UTC))
    skipped = await publish_as(zone_stack, vetting, source="/ezone/catalog")
    # A review naming the school under a zone that does not exist, then the school's own on the same partition.
    reviews = await publish_as(zone_stack, review(ghost, school), review(zone_id, school), source="/ezone/results")
    await consumed(zone_stack, "plans", [*skipped, *reviews])

    assert await scalar(zone_stack, "SELECT count(*) FROM plans.partners WHERE id = :p", p=partner) == 0
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.review_records WHERE school_id = :s", s=school) == 1

    async def counted() -> bool:
        return unknown_zone_counts(metric_reader).get("ezone.plans.events", 0) == before + 2

    await wait_for(counted, 10, what="two events of an unknown zone counted by the plans consumer")


async def test_a_kept_event_that_fails_when_its_zone_registers_goes_to_the_dlq_and_a_replay_handles_it(
    postgres, broker, key_dir
):
    async with kit_environment(postgres, broker, key_dir) as env:
        known, parked = zone_tables(env["metadata"])
        async with env["engine"].begin() as conn:
            await conn.run_sync(lambda sync: env["metadata"].create_all(sync, tables=[known, parked]))
        handled: list[str] = []
        failing = {"POISON"}

        async def record_school(ctx: HandlerContext) -> None:
            if ctx.event.code in failing:
                raise ValueError(f"cannot handle {ctx.event.code}")
            handled.append(ctx.event.code)

        spec = ConsumerSpec(name="counter", topics=(env["topic"],), handlers={SchoolRegistered: record_school},
                            zones=ProjectedZones.of(env["metadata"]))
        worker = ConsumerWorker("kit_test", spec, async_sessionmaker(env["engine"], expire_on_commit=False),
                                Outbox(env["metadata"], "/test"), env["publisher"], env["settings"])
        task = asyncio.create_task(worker.run())
        try:
            schools = [SchoolRegistered(zone_id="late", school_id=uuid.uuid4(), code=code, name=code, grade_span="6-8",
                                        registered_at=datetime.now(UTC)) for code in ("POISON", "GOOD")]
            await env["publisher"].publish([outgoing(env["topic"], school) for school in schools])
            await wait_for(holds(lambda: worker.unknown_zone_skipped == 2), 20, what="both schools kept for their zone")
            assert handled == []

            zone = ZoneRegistered(zone_id="late", name="Late", district="Late", registered_at=datetime.now(UTC))
            await env["publisher"].publish([outgoing(env["topic"], zone)])
            await wait_for(holds(lambda: handled == ["GOOD"]), 20, what="the kept school handled as its zone registered")
            dead = await read_dead_letters(env["settings"], [dead_letter_topic(env["topic"], worker.group)])
            assert [(d.ce_type, "cannot handle POISON" in d.error) for d in dead] == [(SchoolRegistered.ce_type, True)]

            failing.clear()
            assert await replay_dead_letters(env["settings"], [dead_letter_topic(env["topic"], worker.group)]) == 1
            await wait_for(holds(lambda: handled == ["GOOD", "POISON"]), 20, what="the replayed school handled")
        finally:
            task.cancel()
            await worker.stop()


def holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def predicate() -> bool:
        return condition()

    return predicate


def outgoing(topic: str, event: Event) -> OutgoingRecord:
    return OutgoingRecord(id=uuid.uuid4(), topic=topic, key=event.partition_key(), ce_type=event.ce_type,
                          ce_source="/test", ce_time=datetime.now(UTC), value=event.model_dump_json().encode())
