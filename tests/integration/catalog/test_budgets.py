"""A school's two budgets for services, as the seeds describe them: what the district provides every school
(facilities, payroll, transport, food) is charged to the district-services line the zone policy sets, and the
services budget of the school's approved plan stays for what the school chose; whatever crowds the plan's own
purchases out of that budget warns the school and the board."""

from __future__ import annotations

import uuid
from decimal import Decimal

from ezone_schemas.plans import PlannedService

from tests.helpers import register_school, school_code, wait_for_count
from tests.integration.catalog.support import catalog_zone

# The demo catalog's district services, per pupil.
DISTRICT = [("Facilities and maintenance", "facilities", "38.00"), ("Payroll and HR administration", "payroll", "9.00"),
            ("Student transportation", "transportation", "52.00"), ("Food service", "food_service", "24.00")]
AT_RISK = "org.ezone.catalog.budget.planned_purchases_at_risk.v1"
FIGURES = ("envelope", "committed", "remaining", "planned_outstanding", "short_by")


def figures(budget: dict) -> dict[str, Decimal]:
    return {key: Decimal(budget[key]) for key in FIGURES}


async def kiley_academy(stack, zone_id):
    """The zone with Kiley Academy (191 pupils), the demo's district services, interim assessments and a math
    partner's coaching; Kiley's approved plan budgets 65,513 for services: 45,000 of assessments, 20,513 of coaching."""
    zone = await catalog_zone(stack, zone_id, schools=0)
    kiley = await register_school(stack, zone_id, {"code": school_code(), "name": "Kiley Academy", "grade_span": "6-8",
                                                   "enrollment": 191})
    await wait_for_count(stack, "SELECT count(*) FROM catalog.schools WHERE zone_id = :z", 1, z=zone_id)
    zone.school_ids = [kiley["id"]]
    for name, category, price in DISTRICT:
        await zone.add_service(name=name, category=category, price=price, non_optional=True, needs=["operations"],
                               levers=[])
    assessments = await zone.add_service(price="18.00")
    coaching = await zone.partner_service(await zone.add_partner())
    await zone.approve_plan("65513.00", planned=[
        PlannedService(description="Interim assessments", amount=Decimal("45000"), provider="district",
                       service_id=uuid.UUID(assessments["id"])),
        PlannedService(description="Math coaching", amount=Decimal("20513"), provider="partner",
                       partner_id=uuid.UUID(coaching["partner_id"])),
    ])
    return zone, assessments, coaching


async def test_kiley_academys_district_services_are_charged_to_the_district_line_not_its_plans_budget(
        zone_stack, zone_id):
    zone, assessments, coaching = await kiley_academy(zone_stack, zone_id)

    budget = await zone.budget()
    assert figures(budget) == {"envelope": Decimal("65513"), "committed": Decimal("0"), "remaining": Decimal("65513"),
                               "planned_outstanding": Decimal("65513"), "short_by": Decimal("0")}
    district = budget["district_services"]
    assert Decimal(district["committed"]) == Decimal("23493")  # 191 pupils x (38 + 9 + 52 + 24)
    assert district["categories"] == ["facilities", "payroll", "transportation", "food_service"]
    assert (district["allocation"], district["remaining"]) == (None, None)  # the default policy: covered in full
    assert sorted(s["category"] for s in district["services"]) == ["facilities", "food_service", "payroll",
                                                                   "transportation"]
    assigned = (await zone.request("GET", f"/schools/{zone.school_id}/orders", zone.staff(),
                                   params={"status": "assigned"})).json()
    assert len(assigned) == 4 and {order["charged_to"] for order in assigned} == {"district_services"}
    mine = await zone.request("GET", f"/schools/{zone.school_id}/budget/2025-26", zone.team())  # the school sees both
    assert mine.status_code == 200 and Decimal(mine.json()["district_services"]["committed"]) == Decimal("23493")

    # The plan's own purchases fit, and warn no one.
    for service_id, quantity in ((assessments["id"], 191), (coaching["id"], 20)):
        order = await zone.placed(service_id, quantity)
        assert (order["charged_to"], order["warnings"]) == ("services", [])
    assert figures(await zone.budget()) == {
        "envelope": Decimal("65513"), "committed": Decimal("23438"), "remaining": Decimal("42075"),
        "planned_outstanding": Decimal("42075"), "short_by": Decimal("0")}  # 45000 - 3438 + 20513 - 20000
    assert await zone.outbox(AT_RISK, zone_id=zone_id) == 0


async def test_the_zone_policy_sets_the_district_services_line(zone_stack, zone_id):
    zone, _, _ = await kiley_academy(zone_stack, zone_id)
    plans = zone_stack.clients["plans"]
    admin = zone_stack.auth("admin", zone_id)
    current = await plans.get(f"/zones/{zone_id}/policy", headers=admin)
    document = current.json()["document"]
    document["district_services"] = {"categories": ["facilities", "payroll", "transportation"],
                                     "per_pupil_allocation": "150.00"}
    adopted = await plans.put(f"/zones/{zone_id}/policy", json=document,
                              headers={**admin, "If-Match": current.headers["ETag"]})
    assert adopted.status_code == 201, adopted.text
    await wait_for_count(zone_stack, "SELECT count(*) FROM catalog.zone_policies WHERE zone_id = :z AND version = :v",
                         1, z=zone_id, v=adopted.json()["version"])

    district = (await zone.budget())["district_services"]
    assert (Decimal(district["allocation"]), Decimal(district["remaining"])) == (Decimal("28650"), Decimal("5157"))
    # Charges stay where they were made; a food service published from now on goes to the plan's budget.
    await zone.add_service(name="Summer meals", category="food_service", price="10.00", non_optional=True,
                           needs=["operations"], levers=[])
    assert Decimal((await zone.budget())["committed"]) == Decimal("1910")
    assert await zone.outbox(AT_RISK, zone_id=zone_id, service_name="Summer meals") == 1  # the plan no longer fits


async def test_what_crowds_out_the_plans_purchases_warns_the_school_and_the_board(zone_stack, zone_id):
    zone, assessments, _ = await kiley_academy(zone_stack, zone_id)

    # A non-optional service outside the district's categories is charged to the plan's budget.
    licence = await zone.add_service(name="Curriculum licence", category="curriculum", unit="fixed", price="30000.00",
                                     non_optional=True)
    assert figures(await zone.budget())["short_by"] == Decimal("30000")
    assert await zone.outbox(AT_RISK, cause="assignment", service_id=licence["id"]) == 1

    # An order the plan did not budget for is placed (it fits), with a warning, and announced.
    institute = await zone.add_service(name="Leadership institute", category="professional_development", unit="fixed",
                                       price="2000.00")
    placed = await zone.order(institute["id"])
    assert placed.status_code == 201, placed.text
    [warning] = placed.json()["warnings"]
    assert warning["type"] == "planned-purchases-at-risk" and Decimal(warning["short_by"]) == Decimal("32000")
    assert "Leadership institute" in warning["detail"] and "33513.00" in warning["detail"]
    assert await zone.outbox(AT_RISK, cause="order", order_id=placed.json()["id"]) == 1
    assert figures(await zone.budget())["short_by"] == Decimal("32000")

    # The plan's own purchase does not make it worse: no second warning.
    planned = await zone.placed(assessments["id"], 191)
    assert planned["warnings"] == [] and await zone.outbox(AT_RISK, zone_id=zone_id) == 2
