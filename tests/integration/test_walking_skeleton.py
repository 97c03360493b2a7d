"""One event through all four services: plans registers a school, the three others project it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ezone_kit.relay import mark_for_replay
from ezone_schemas import SchoolRegistered

from tests.events import published_events
from tests.helpers import register_school, register_zone, scalar, wait_for_count

PROJECTING_SERVICES = ("results", "catalog", "notifications")


async def test_registered_school_appears_once_in_every_projection_even_after_duplicate_delivery(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    school = await register_school(zone_stack, zone_id)

    for schema in PROJECTING_SERVICES:
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :id", 1, id=school["id"])
    first_seen = {
        schema: await scalar(zone_stack, f"SELECT updated_at FROM {schema}.schools WHERE id = :id", id=school["id"])
        for schema in PROJECTING_SERVICES
    }

    # Deliver every event of the last minute again: the broker sees each a second time.
    replayed = await mark_for_replay(zone_stack.kits["plans"].engine, "plans", datetime.now(UTC) - timedelta(minutes=1))
    assert replayed >= 2
    await wait_for_count(zone_stack, "SELECT count(*) FROM plans.outbox WHERE sent_at IS NULL", 0)

    event_id = await scalar(
        zone_stack, "SELECT id FROM plans.outbox WHERE ce_type = 'org.ezone.plans.school.registered.v1' AND key = :key",
        key=school["id"],
    )
    for schema in PROJECTING_SERVICES:
        # The inbox row proves the event arrived; one row (and an untouched projection) proves it acted once.
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.inbox WHERE event_id = :id", 1, id=event_id)
        assert await scalar(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE zone_id = :z", z=zone_id) == 1
        assert await scalar(zone_stack, f"SELECT updated_at FROM {schema}.schools WHERE id = :id", id=school["id"]) == first_seen[schema]


async def test_each_service_lists_the_registered_school_to_a_board_member_of_its_zone(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    school = await register_school(zone_stack, zone_id)
    for schema in PROJECTING_SERVICES:
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :id", 1, id=school["id"])
    for name in ("results", "services-catalog", "notifications"):
        response = await zone_stack.clients[name].get(f"/zones/{zone_id}/schools", headers=zone_stack.auth("board", zone_id))
        assert response.status_code == 200, response.text
        assert [s["code"] for s in response.json()] == [school["code"]]


async def test_school_registered_event_on_the_broker_carries_cloudevents_headers_and_the_school_key(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    school = await register_school(zone_stack, zone_id)
    [event] = await published_events(zone_stack, SchoolRegistered.topic, SchoolRegistered.ce_type, key=school["id"])
    assert event["code"] == school["code"] and event["zone_id"] == zone_id
    headers = event["_headers"]
    assert headers["ce_specversion"] == "1.0" and headers["ce_source"] == "/ezone/plans"
    assert headers["content-type"] == "application/json" and headers["traceparent"].startswith("00-")
