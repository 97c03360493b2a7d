"""Non-optional services on the real stack: assigned to every school with an approved plan, whichever comes
first, once, charged to the district-services line or the envelope, and never ordered or cancelled by a school."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import text

from ezone.stack import wait_for
from tests.helpers import scalar
from tests.integration.catalog.support import YEAR, assert_problem, catalog_zone, consumed_by_catalog, publish_as

FACILITIES = {"name": "Facilities and maintenance", "category": "facilities", "non_optional": True, "price": "2.00",
              "needs": ["operations"], "levers": []}
TRANSPORT = {"name": "Transportation", "category": "transportation", "non_optional": True, "unit": "fixed",
             "price": "1500.00", "needs": ["operations"], "levers": []}


async def assignments(zone, school_id: str | None = None) -> list[tuple[str, int, Decimal]]:
    rows = (await zone.request("GET", f"/schools/{school_id or zone.school_id}/orders", zone.staff(),
                               params={"status": "assigned"})).json()
    return sorted((o["service_name"], o["quantity"], Decimal(o["amount"])) for o in rows)


async def test_publishing_a_non_optional_service_assigns_it_to_every_school_with_an_approved_plan(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id, schools=3)
    duggan, forest_park, _unplanned = zone.school_ids
    for school_id in (duggan, forest_park):
        await zone.approve_plan("10000.00", school_id)

    facilities = await zone.add_service(**FACILITIES)
    assert await assignments(zone, duggan) == [("Facilities and maintenance", 980, Decimal("1960"))]  # per pupil: enrollment
    assert await assignments(zone, forest_park) == [("Facilities and maintenance", 560, Decimal("1120"))]
    assert await assignments(zone, _unplanned) == []
    budget = await zone.budget(duggan)
    # Facilities are the district's to provide: charged to the district-services line, not the plan's budget.
    assert (Decimal(budget["district_services"]["committed"]), Decimal(budget["remaining"])) == (Decimal("1960"),
                                                                                             Decimal("10000"))
    assert await zone.scalar("SELECT count(*) FROM catalog.audit_log WHERE zone_id = :z AND action = 'order.assigned' "
                             "AND actor = 'dev-district'", z=zone_id) == 2
    # Publishing again assigns nothing more.
    assert (await zone.request("POST", f"/services/{facilities['id']}/publish", zone.staff())).status_code == 200
    assert await zone.scalar("SELECT count(*) FROM catalog.orders WHERE zone_id = :z", z=zone_id) == 2


async def test_a_plan_approved_later_gets_every_published_non_optional_service_once_amendments_included(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.add_service(**FACILITIES)
    await zone.add_service(**TRANSPORT)
    await zone.add_service(**{**FACILITIES, "name": "Payroll", "category": "payroll"}, publish=False)  # a draft: not assigned

    await zone.approve_plan("10000.00")
    expected = [("Facilities and maintenance", 980, Decimal("1960")), ("Transportation", 1, Decimal("1500"))]
    assert await assignments(zone) == expected
    await zone.approve_plan("12000.00")  # an amendment: version 2
    assert await assignments(zone) == expected
    budget = await zone.budget()
    assert (Decimal(budget["remaining"]), Decimal(budget["district_services"]["committed"])) == (Decimal("12000"),
                                                                                             Decimal("3460"))
    assert await zone.scalar("SELECT count(*) FROM catalog.audit_log WHERE zone_id = :z AND action = 'order.assigned' "
                             "AND actor = 'system:catalog'", z=zone_id) == 2


async def test_a_redelivered_plan_approval_assigns_nothing_twice(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.add_service(**FACILITIES)
    approval = zone.plan_approved("10000.00")
    ids = await publish_as(zone_stack, approval, source="/ezone/plans")
    await publish_as(zone_stack, approval, source="/ezone/plans", event_ids=ids)  # the same event again
    await consumed_by_catalog(zone_stack, ids)
    assert len(await assignments(zone)) == 1


async def test_a_plan_approved_while_a_non_optional_service_is_being_published_still_gets_it(zone_stack, zone_id):
    """The write skew the zone's assignment lock prevents: the publication has not committed when the approval
    reads the published services, and the approval's envelope is not committed when the publication reads envelopes."""
    zone = await catalog_zone(zone_stack, zone_id, schools=2)
    planned_earlier, planned_now = zone.school_ids
    await zone.approve_plan("10000.00", planned_earlier)
    draft = await zone.add_service(publish=False, **FACILITIES)
    approval = zone.plan_approved("10000.00", planned_now)

    async with zone_stack.kits["services-catalog"].engine.connect() as conn:
        # Stalls the publication at its first assignment, after it has read the envelopes.
        await conn.execute(text("LOCK TABLE catalog.orders IN EXCLUSIVE MODE"))
        publishing = asyncio.ensure_future(zone.request("POST", f"/services/{draft['id']}/publish", zone.staff()))
        await wait_for(lambda: waiting_on_locks(zone_stack, 1), 10, what="the publication to wait")
        ids = await publish_as(zone_stack, approval, source="/ezone/plans")

        async def approval_handled_or_waiting() -> bool:
            handled = await zone.scalar("SELECT count(*) FROM catalog.inbox WHERE event_id = ANY(:ids)", ids=ids)
            return handled == 1 or await waiting_on_locks(zone_stack, 2)

        await wait_for(approval_handled_or_waiting, 20, what="the approval to be handled or to wait")
        await conn.rollback()
    assert (await publishing).status_code == 200
    await consumed_by_catalog(zone_stack, ids)
    assert await assignments(zone, planned_earlier) == [("Facilities and maintenance", 980, Decimal("1960"))]
    assert await assignments(zone, planned_now) == [("Facilities and maintenance", 560, Decimal("1120"))]


async def waiting_on_locks(stack, count: int) -> bool:
    return await scalar(stack, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'") >= count


async def test_a_non_optional_service_cannot_be_ordered_cancelled_or_decided(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    facilities = await zone.add_service(**FACILITIES)
    await zone.approve_plan("10000.00")
    [assignment] = (await zone.request("GET", f"/schools/{zone.school_id}/orders", zone.team())).json()
    before = await zone.footprint()

    refused = assert_problem(await zone.order(facilities["id"], 980), 409)
    assert refused["type"].endswith("non-optional-service") and "cannot be ordered" in refused["detail"]
    assert assert_problem(await zone.cancel(assignment), 409)["type"].endswith("non-optional-service")
    for action in ("confirm", "fulfil"):
        assert_problem(await zone.act(assignment["id"], action), 409)
    assert_problem(await zone.act(assignment["id"], "reject", json={"reason": "No"}), 409)
    assert await zone.footprint() == before
    assert (await zone.request("GET", f"/orders/{assignment['id']}", zone.team())).json()["status"] == "assigned"
    assert assignment["school_year"] == YEAR
