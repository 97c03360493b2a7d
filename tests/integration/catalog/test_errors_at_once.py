"""An order or a service with errors of every kind is answered once: the body's shape (a field of the wrong type),
an id that is not the resource's (as read), and what the catalog says of its fields (an unknown service or partner, a
fixed price ordered by quantity) in one 422, and nothing stored."""

from __future__ import annotations

import uuid

from tests.integration.catalog.support import YEAR, assert_invalid_fields, catalog_zone, service_body


async def _post(zone, body: dict):  # noqa: ANN001, ANN202
    return await zone.request("POST", f"/schools/{zone.school_id}/orders",
                              {**zone.team(), "Idempotency-Key": str(uuid.uuid4())}, json=body)


async def test_a_type_error_another_schools_id_and_a_quantity_for_a_fixed_price_are_listed_in_one_answer(
        zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    retreat = await zone.add_service(unit="fixed", price="5000.00", name="Leadership retreat")
    before = await zone.footprint()

    response = await _post(zone, {"service_id": retreat["id"], "school_year": "2025/26", "quantity": 2,
                                  "school_id": str(uuid.uuid4())})

    assert_invalid_fields(response, {"school_year", "school_id", "quantity"})
    reasons = {error["field"]: error["reason"] for error in response.json()["errors"]}
    assert "fixed price" in reasons["quantity"] and zone.school_id in reasons["school_id"]
    assert await zone.footprint() == before


async def test_an_unknown_service_is_listed_with_a_quantity_that_is_not_a_number(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    before = await zone.footprint()

    response = await _post(zone, {"service_id": str(uuid.uuid4()), "school_year": YEAR, "quantity": "many"})

    assert_invalid_fields(response, {"service_id", "quantity"})
    assert await zone.footprint() == before


async def test_a_service_of_an_unknown_partner_in_another_zones_name_with_a_bad_price_lists_all_three(
        zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    before = await zone.footprint()
    body = service_body(provider="partner", partner_id=str(uuid.uuid4()), price="cheap", zone_id=f"{zone_id}-other")

    response = await zone.request("POST", "/services", zone.staff(), json=body)

    assert_invalid_fields(response, {"partner_id", "price", "zone_id"})
    assert await zone.footprint() == before
