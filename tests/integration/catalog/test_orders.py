"""Orders on the real stack: budget envelopes from plan.approved, capacity, racing orders, Idempotency-Key, the
lifecycle with every wrong role, and events on the broker."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from ezone_schemas import OrderCancelled, OrderConfirmed, OrderFulfilled, OrderPlaced, OrderRejected

from tests.events import published_events
from tests.integration.catalog.support import (
    CATALOG_TOPIC,
    YEAR,
    assert_invalid_fields,
    assert_problem,
    catalog_zone,
)


async def test_an_order_within_budget_is_placed_announced_and_counted_against_the_envelope(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()

    response = await zone.order(service["id"], 980)
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["Location"] == f"/zones/{zone_id}/orders/{order['id']}"
    assert (order["status"], order["quantity"], Decimal(order["unit_price"]), Decimal(order["amount"])) == (
        "requested", 980, Decimal("10"), Decimal("9800"))
    assert (order["school_id"], order["school_year"], order["placed_by"], order["created"]) == (zone.school_id, YEAR, "dev-school", True)

    budget = await zone.budget()
    assert (Decimal(budget["envelope"]), Decimal(budget["committed"]), Decimal(budget["remaining"])) == (
        Decimal("20000"), Decimal("9800"), Decimal("10200"))
    assert budget["plan_version"] == 1
    [event] = await published_events(zone_stack, CATALOG_TOPIC, OrderPlaced.ce_type, key=zone.school_id, where={"order_id": order["id"]})
    assert (event["service_id"], event["service_name"], event["quantity"], Decimal(event["amount"])) == (
        service["id"], "Interim assessments", 980, Decimal("9800"))
    assert event["partner_id"] is None and event["placed_by"] == "dev-school"
    assert await zone.scalar("SELECT count(*) FROM catalog.audit_log WHERE action = 'order.placed' AND entity_id = :o",
                             o=order["id"]) == 1


async def test_an_order_over_the_remaining_budget_is_409_saying_by_how_much_and_stores_nothing(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("10000.00")
    service = await zone.add_service(price="12.50")
    await zone.placed(service["id"], 500)  # 6,250 of 10,000
    before = await zone.footprint()

    refused = assert_problem(await zone.order(service["id"], 400), 409)  # 5,000 > 3,750
    assert refused["type"] == "https://ezone.dev/problems/over-budget"
    assert "by 1250.00" in refused["detail"]
    assert (refused["over_by"], refused["remaining"], refused["amount"], refused["envelope"]) == ("1250.00", "3750.00", "5000.00", "10000.00")
    assert await zone.footprint() == before
    # Exactly the remainder still fits.
    assert (await zone.order(service["id"], 300)).status_code == 201


async def test_an_amendment_changes_the_envelope_and_the_newest_version_wins(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("1000.00")
    service = await zone.add_service()
    assert_problem(await zone.order(service["id"], 150), 409)
    await zone.approve_plan("2000.00")  # version 2
    assert (await zone.order(service["id"], 150)).status_code == 201
    budget = await zone.budget()
    assert (budget["plan_version"], Decimal(budget["envelope"]), Decimal(budget["remaining"])) == (2, Decimal("2000"), Decimal("500"))


async def test_without_an_approved_plan_there_is_no_budget_and_no_order(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    service = await zone.add_service()
    before = await zone.footprint()
    refused = assert_problem(await zone.order(service["id"]), 409)
    assert refused["type"].endswith("no-budget-envelope") and YEAR in refused["detail"]
    assert_problem(await zone.request("GET", f"/schools/{zone.school_id}/budget/{YEAR}", zone.staff()), 404)
    assert await zone.footprint() == before


async def test_an_order_over_the_services_capacity_is_409_and_capacity_is_shared_by_the_zones_schools(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=2)
    for school_id in zone.school_ids:
        await zone.approve_plan("100000.00", school_id)
    partner_id = await zone.add_partner()
    coaching = await zone.partner_service(partner_id, capacity_per_year=10)
    await zone.placed(coaching["id"], 6)
    before = await zone.footprint()

    refused = assert_problem(await zone.order(coaching["id"], 5, school_id=zone.school_ids[1]), 409)
    assert refused["type"].endswith("over-capacity")
    assert (refused["available"], refused["capacity"]) == (4, 10)
    assert await zone.footprint() == before
    assert (await zone.order(coaching["id"], 4, school_id=zone.school_ids[1])).status_code == 201


async def test_racing_orders_for_the_last_of_the_budget_exactly_the_ones_that_fit_succeed(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("1000.00")
    service = await zone.add_service(unit="fixed", price="100.00", name="Data coaching session")

    responses = await asyncio.gather(*(zone.order(service["id"]) for _ in range(16)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 10 + [409] * 6, [r.text for r in responses]
    assert all(r.json()["type"].endswith("over-budget") for r in responses if r.status_code == 409)
    budget = await zone.budget()
    assert (Decimal(budget["committed"]), Decimal(budget["remaining"])) == (Decimal("1000"), Decimal("0"))
    assert await zone.outbox(OrderPlaced.ce_type, school_id=zone.school_id) == 10


async def test_racing_orders_from_several_schools_for_the_last_capacity_exactly_the_ones_that_fit_succeed(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=3)
    for school_id in zone.school_ids:
        await zone.approve_plan("100000.00", school_id)
    partner_id = await zone.add_partner()
    coaching = await zone.partner_service(partner_id, capacity_per_year=7)

    responses = await asyncio.gather(*(zone.order(coaching["id"], 1, school_id=school_id)
                                       for school_id in zone.school_ids for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [201] * 7 + [409] * 5, [r.text for r in responses]
    used = await zone.scalar("SELECT sum(quantity) FROM catalog.orders WHERE service_id = :s", s=coaching["id"])
    assert used == 7


async def test_the_same_order_sent_twice_with_one_key_places_one_order(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    key = str(uuid.uuid4())

    first = await zone.order(service["id"], 100, key=key)
    again = await zone.order(service["id"], 100, key=key)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert {**again.json(), "created": True} == first.json()
    assert await zone.scalar("SELECT count(*) FROM catalog.orders WHERE school_id = :s", s=zone.school_id) == 1
    assert await zone.outbox(OrderPlaced.ce_type, school_id=zone.school_id) == 1

    reused = assert_problem(await zone.order(service["id"], 101, key=key), 422)
    assert reused["type"].endswith("idempotency-key-reused")
    # A new key is a new order.
    assert (await zone.order(service["id"], 100)).status_code == 201


async def test_the_same_order_sent_twice_at_once_with_one_key_places_one_order_and_both_succeed(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    key = str(uuid.uuid4())

    responses = await asyncio.gather(*(zone.order(service["id"], 100, key=key) for _ in range(3)))
    assert sorted(r.status_code for r in responses) == [200, 200, 201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await zone.scalar("SELECT count(*) FROM catalog.orders WHERE school_id = :s", s=zone.school_id) == 1


async def test_a_refused_order_retried_with_its_key_is_refused_again_not_replayed(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("100.00")
    service = await zone.add_service()
    key = str(uuid.uuid4())
    assert_problem(await zone.order(service["id"], 11, key=key), 409)
    await zone.approve_plan("1000.00")
    assert (await zone.order(service["id"], 11, key=key)).status_code == 201


async def test_an_order_without_an_idempotency_key_is_400_and_stores_nothing(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    before = await zone.footprint()
    response = await zone.request("POST", f"/schools/{zone.school_id}/orders", zone.team(),
                                  json={"service_id": service["id"], "school_year": YEAR, "quantity": 1})
    assert assert_problem(response, 400)["type"].endswith("idempotency-key-required")
    assert await zone.footprint() == before


INVALID_ORDERS = {
    "everything missing": ({}, {"service_id", "school_year", "quantity"}),
    "zero quantity": ({"quantity": 0}, {"quantity"}),
    "not a school year": ({"school_year": "2025-27"}, {"school_year"}),
    "malformed school year": ({"school_year": "2025/26"}, {"school_year"}),
    "service id not a uuid": ({"service_id": "assessments"}, {"service_id"}),
    "unknown field": ({"price": "0.01"}, {"price"}),
    "unknown service": ({"service_id": str(uuid.uuid4())}, {"service_id"}),
}


@pytest.mark.parametrize("case", INVALID_ORDERS, ids=list(INVALID_ORDERS))
async def test_an_invalid_order_is_422_naming_every_field_and_stores_nothing(zone_stack, zone_id, case):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    change, fields = INVALID_ORDERS[case]
    body = {"service_id": service["id"], "school_year": YEAR, "quantity": 1} | change if change else {}
    before = await zone.footprint()

    response = await zone.request("POST", f"/schools/{zone.school_id}/orders", {**zone.team(), "Idempotency-Key": "k-1"}, json=body)
    assert_invalid_fields(response, fields)
    assert await zone.footprint() == before


async def test_a_fixed_price_service_is_ordered_once_per_year_not_by_quantity(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service(unit="fixed", price="5000.00", name="Leadership retreat")
    before = await zone.footprint()
    assert_invalid_fields(await zone.order(service["id"], 2), {"quantity"})
    assert await zone.footprint() == before


@pytest.mark.parametrize("state", ["draft", "retired"])
async def test_a_draft_or_retired_service_cannot_be_ordered(zone_stack, zone_id, state):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service(publish=state != "draft")
    if state == "retired":
        assert (await zone.request("POST", f"/services/{service['id']}/retire", zone.staff())).status_code == 200
    before = await zone.footprint()
    refused = assert_problem(await zone.order(service["id"]), 409)
    assert refused["service_status"] == state
    assert await zone.footprint() == before


async def test_a_school_orders_only_for_itself_and_only_its_team_orders(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=2)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    partner_id = await zone.add_partner()
    before = await zone.footprint()

    assert_problem(await zone.order(service["id"], headers=zone.team(zone.school_ids[1])), 403)
    for role in ("district", "admin", "board"):
        assert_problem(await zone.order(service["id"], headers=zone.staff(role)), 403)
    assert_problem(await zone.order(service["id"], headers=zone.stack.auth("sis", zone_id, [zone.school_id])), 403)
    assert_problem(await zone.order(service["id"], headers=zone.partner(partner_id)), 403)
    elsewhere = zone.stack.auth("school", f"{zone_id}-x", [zone.school_id])
    assert "Interim" not in assert_problem(await zone.order(service["id"], headers=elsewhere), 404)["detail"]
    assert await zone.footprint() == before


async def test_an_order_lives_from_request_to_fulfilment_announced_at_each_step(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    order = await zone.placed(service["id"], 100)

    confirmed = await zone.act(order["id"], "confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["status"], confirmed.json()["decided_by"]) == ("confirmed", "dev-district")
    fulfilled = await zone.act(order["id"], "fulfil", zone.staff("admin"))
    assert fulfilled.status_code == 200, fulfilled.text
    assert (fulfilled.json()["status"], fulfilled.json()["fulfilled_by"]) == ("fulfilled", "dev-admin")

    for event_type, by in ((OrderConfirmed, "confirmed_by"), (OrderFulfilled, "fulfilled_by")):
        [event] = await published_events(zone_stack, CATALOG_TOPIC, event_type.ce_type, key=zone.school_id,
                                         where={"order_id": order["id"]})
        assert event[by] in ("dev-district", "dev-admin") and Decimal(event["amount"]) == Decimal("1000")
    # Delivered orders stay committed.
    assert Decimal((await zone.budget())["committed_by_status"]["fulfilled"]) == Decimal("1000")
    actions = await zone.scalar("SELECT string_agg(action, ',' ORDER BY id) FROM catalog.audit_log WHERE entity_id = :o",
                                o=order["id"])
    assert actions == "order.placed,order.confirmed,order.fulfilled"


async def test_each_step_repeated_changes_nothing_and_out_of_turn_steps_are_409(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    order = await zone.placed(service["id"], 10)

    assert_problem(await zone.act(order["id"], "fulfil"), 409)  # not confirmed yet
    assert (await zone.act(order["id"], "confirm")).status_code == 200
    again = await zone.act(order["id"], "confirm")
    assert (again.status_code, again.json()["status"]) == (200, "confirmed")
    body = assert_problem(await zone.act(order["id"], "reject", json={"reason": "Too late"}), 409)
    assert body["order_status"] == "confirmed"
    assert (await zone.act(order["id"], "fulfil")).status_code == 200
    assert (await zone.act(order["id"], "fulfil")).status_code == 200
    assert assert_problem(await zone.cancel(order), 409)["order_status"] == "fulfilled"
    assert_problem(await zone.act(order["id"], "confirm"), 409)

    assert await zone.outbox(OrderConfirmed.ce_type, order_id=order["id"]) == 1
    assert await zone.outbox(OrderFulfilled.ce_type, order_id=order["id"]) == 1
    assert await zone.scalar("SELECT count(*) FROM catalog.audit_log WHERE entity_id = :o", o=order["id"]) == 3


async def test_a_rejection_carries_its_reason_releases_the_budget_and_is_not_repeated(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    order = await zone.placed(service["id"], 1000)
    before = await zone.footprint()

    assert_invalid_fields(await zone.act(order["id"], "reject", json={}), {"reason"})
    assert_invalid_fields(await zone.act(order["id"], "reject", json={"reason": ""}), {"reason"})
    assert await zone.footprint() == before

    reason = "Assessments are delivered to whole schools; order for all 980 pupils."
    rejected = await zone.act(order["id"], "reject", json={"reason": reason})
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["reason"]) == ("rejected", reason)
    assert (await zone.act(order["id"], "reject", json={"reason": reason})).status_code == 200
    assert assert_problem(await zone.act(order["id"], "reject", json={"reason": "Another"}), 409)["reason"] == reason
    [event] = await published_events(zone_stack, CATALOG_TOPIC, OrderRejected.ce_type, key=zone.school_id, where={"order_id": order["id"]})
    assert (event["reason"], event["rejected_by"]) == (reason, "dev-district")
    assert Decimal((await zone.budget())["committed"]) == 0
    assert_problem(await zone.act(order["id"], "confirm"), 409)
    assert_problem(await zone.cancel(order), 409)


@pytest.mark.parametrize("confirm_first", [False, True], ids=["requested", "confirmed"])
async def test_the_school_cancels_before_fulfilment_and_the_budget_is_released(zone_stack, zone_id, confirm_first):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    order = await zone.placed(service["id"], 1000)
    if confirm_first:
        assert (await zone.act(order["id"], "confirm")).status_code == 200

    cancelled = await zone.cancel(order)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["cancelled_by"]) == ("cancelled", "dev-school")
    assert (await zone.cancel(order)).json()["status"] == "cancelled"
    assert await zone.outbox(OrderCancelled.ce_type, order_id=order["id"]) == 1
    [event] = await published_events(zone_stack, CATALOG_TOPIC, OrderCancelled.ce_type, key=zone.school_id, where={"order_id": order["id"]})
    assert event["cancelled_by"] == "dev-school"
    assert Decimal((await zone.budget())["remaining"]) == Decimal("20000")
    assert_problem(await zone.act(order["id"], "fulfil"), 409)


async def test_every_step_by_a_wrong_caller_is_refused_and_changes_nothing(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=2)
    await zone.approve_plan("20000.00")
    partner_id = await zone.add_partner()
    coaching = await zone.partner_service(partner_id)
    order = await zone.placed(coaching["id"], 2)
    before = await zone.footprint()

    team, other_team = zone.team(), zone.team(zone.school_ids[1])
    partner, board = zone.partner(partner_id), zone.staff("board")
    sis = zone.stack.auth("sis", zone_id, [zone.school_id])
    for action in ("confirm", "fulfil"):
        for headers in (team, partner, board, sis):
            assert_problem(await zone.act(order["id"], action, headers), 403)
    for headers in (team, partner, board, sis):
        assert_problem(await zone.act(order["id"], "reject", headers, json={"reason": "No"}), 403)
    # Cancelling is the school's own: not staff's, not the partner's, not another school's.
    for headers in (zone.staff(), zone.staff("admin"), partner, board):
        assert_problem(await zone.cancel(order, headers), 403)
    assert_problem(await zone.cancel(order, other_team), 403)
    path = f"/schools/{zone.school_ids[1]}/orders/{order['id']}/cancel"
    assert_problem(await zone.request("POST", path, other_team), 404)  # its own school path, not its order
    # Another zone's staff and school do not find it.
    elsewhere = f"{zone_id}-x"
    for action in ("confirm", "fulfil"):
        assert_problem(await zone.act(order["id"], action, zone.stack.auth("district", elsewhere)), 404)
    assert_problem(await zone.cancel(order, zone.stack.auth("school", elsewhere, [zone.school_id])), 404)
    assert await zone.footprint() == before
    assert (await zone.request("GET", f"/orders/{order['id']}", zone.staff())).json()["status"] == "requested"


async def test_an_intensive_support_school_orders_only_from_vetted_partners(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=2)
    intensive, standard = zone.school_ids
    for school_id in zone.school_ids:
        await zone.approve_plan("100000.00", school_id)
    await zone.set_tier("intensive_support", intensive)
    provisional = await zone.partner_service(await zone.add_partner("Extended Day Partners", vetting="provisional"),
                                             name="Extended learning time")
    unvetted = await zone.partner_service(await zone.add_partner("New Tutors Co", vetting=None), name="Tutoring")
    vetted = await zone.partner_service(await zone.add_partner("Pioneer Valley Math Collaborative"))
    before = await zone.footprint()

    for service in (provisional, unvetted):
        refused = assert_problem(await zone.order(service["id"], school_id=intensive), 409)
        assert refused["type"].endswith("vetted-partner-required")
        assert "intensive support" in refused["detail"]
    assert await zone.footprint() == before
    assert (await zone.order(vetted["id"], school_id=intensive)).status_code == 201
    # A standard school may buy from a partner that is not (yet) vetted.
    assert (await zone.order(provisional["id"], school_id=standard)).status_code == 201
    assert (await zone.order(unvetted["id"], school_id=standard)).status_code == 201


async def test_a_revoked_partner_cannot_be_ordered_by_any_school(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("100000.00")
    partner_id = await zone.add_partner()
    coaching = await zone.partner_service(partner_id)
    revoked = await zone.request("POST", f"/partners/{partner_id}/vettings", zone.staff(),
                                 json={"status": "revoked", "notes": "Falsified outcome data."})
    assert revoked.status_code == 201, revoked.text
    assert assert_problem(await zone.order(coaching["id"]), 409)["type"].endswith("partner-revoked")


async def test_each_caller_sees_only_the_orders_it_may(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=2)
    first, second = zone.school_ids
    for school_id in zone.school_ids:
        await zone.approve_plan("100000.00", school_id)
    ours, theirs = await zone.add_partner("Pioneer Valley Math Collaborative"), await zone.add_partner("Climate Partners")
    our_service = await zone.partner_service(ours)
    their_service = await zone.partner_service(theirs, name="Restorative practices")
    district = await zone.add_service()
    mine = await zone.placed(our_service["id"], 1, school_id=first)
    others = [await zone.placed(their_service["id"], 1, school_id=second), await zone.placed(district["id"], 10, school_id=first)]

    def ids(response) -> set[str]:
        assert response.status_code == 200, response.text
        return {o["id"] for o in response.json()}

    everything = {mine["id"], *(o["id"] for o in others)}
    for role in ("district", "admin", "board"):
        assert ids(await zone.request("GET", "/orders", zone.staff(role))) == everything
    assert ids(await zone.request("GET", "/orders", zone.team(first))) == {mine["id"], others[1]["id"]}
    assert ids(await zone.request("GET", f"/schools/{first}/orders", zone.team(first))) == {mine["id"], others[1]["id"]}
    assert ids(await zone.request("GET", "/orders", zone.team(second))) == {others[0]["id"]}
    assert_problem(await zone.request("GET", f"/schools/{first}/orders", zone.team(second)), 403)
    assert_problem(await zone.request("GET", f"/orders/{mine['id']}", zone.team(second)), 404)

    # A partner sees the orders of its own services and nothing else.
    partner = zone.partner(ours)
    assert ids(await zone.request("GET", "/orders", partner)) == {mine["id"]}
    assert ids(await zone.request("GET", "/orders", partner, params={"school_id": second})) == set()
    assert (await zone.request("GET", f"/orders/{mine['id']}", partner)).json()["id"] == mine["id"]
    for order in others:
        assert_problem(await zone.request("GET", f"/orders/{order['id']}", partner), 404)
    for path in (f"/schools/{first}/orders", f"/schools/{first}/budget/{YEAR}", f"/schools/{first}/recommendations"):
        assert_problem(await zone.request("GET", path, partner), 403)
    assert (await zone.request("GET", "/schools", partner)).json() == []
    assert ids(await zone.request("GET", "/orders", zone.partner(str(uuid.uuid4())))) == set()
    assert_problem(await zone.request("GET", "/orders", zone.partner(ours, zone_id=f"{zone_id}-x")), 404)
    assert_problem(await zone.request("GET", "/orders", zone.stack.auth("sis", zone_id, [first])), 403)
