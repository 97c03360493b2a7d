"""The service catalog on the real stack: create, publish and retire, with bad input, repeats and wrong callers."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from ezone_schemas import ServicePublished

from tests.events import published_events
from tests.integration.catalog.support import (
    CATALOG_TOPIC,
    assert_invalid_fields,
    assert_problem,
    catalog_zone,
    service_body,
    vetting_body,
)


async def test_a_service_is_created_as_a_draft_and_published_once_for_everyone_to_see(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    created = await zone.request("POST", "/services", zone.staff(), json=service_body(capacity_per_year=5000))
    assert created.status_code == 201, created.text
    service = created.json()
    assert (service["status"], service["created"], service["created_by"], Decimal(service["price"])) == (
        "draft", True, "dev-district", Decimal("10"))
    assert service["needs"] == ["assessment", "math", "ela"] and service["levers"] == ["curriculum"]
    path = f"/services/{service['id']}"
    # A draft is the staff's own business.
    assert_problem(await zone.request("GET", path, zone.team()), 404)
    assert (await zone.request("GET", "/services", zone.team())).json() == []
    assert [s["id"] for s in (await zone.request("GET", "/services", zone.staff("admin"))).json()] == [service["id"]]

    published = await zone.request("POST", f"{path}/publish", zone.staff())
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published" and published.json()["published_at"]
    again = await zone.request("POST", f"{path}/publish", zone.staff("admin"))
    assert (again.status_code, again.json()["published_at"]) == (200, published.json()["published_at"])

    [event] = await published_events(zone_stack, CATALOG_TOPIC, ServicePublished.ce_type, key=zone_id,
                                     where={"service_id": service["id"]})
    assert (event["name"], event["provider"], event["category"], event["unit"], Decimal(event["price"])) == (
        "Interim assessments", "district", "assessment", "per_pupil", Decimal("10"))
    assert (event["non_optional"], event["capacity_per_year"], event["needs"], event["published_by"]) == (
        False, 5000, ["assessment", "math", "ela"], "dev-district")
    assert await zone.outbox(ServicePublished.ce_type, service_id=service["id"]) == 1
    for role in ("board", "school"):
        headers = zone.team() if role == "school" else zone.staff(role)
        assert (await zone.request("GET", path, headers)).json()["status"] == "published"
    actions = await zone.scalar("SELECT string_agg(action, ',' ORDER BY id) FROM catalog.audit_log WHERE entity_id = :s",
                                s=service["id"])
    assert actions == "service.created,service.published"


async def test_the_same_service_twice_is_created_once_and_other_details_are_409(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    service_id = str(uuid.uuid4())
    first = await zone.request("POST", "/services", zone.staff(), json=service_body(id=service_id))
    again = await zone.request("POST", "/services", zone.staff(), json=service_body(id=service_id))
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert first.json()["id"] == service_id and {**again.json(), "created": True} == first.json()
    before = await zone.footprint()

    conflict = assert_problem(await zone.request("POST", "/services", zone.staff(), json=service_body(price="11.00")), 409)
    assert conflict["service_id"] == service_id
    taken = assert_problem(await zone.request("POST", "/services", zone.staff(), json=service_body(id=service_id, name="Other")), 409)
    assert "already taken" in taken["detail"]
    assert await zone.footprint() == before
    assert before["services"] == 1 and before["audit_log"] == 1


def _partner_service(**changes: object) -> dict:
    return service_body(provider="partner", partner_id=str(uuid.uuid4()), **changes)


INVALID_SERVICES = {
    "everything missing": ({}, {"name", "provider", "category", "description", "unit", "price"}),
    "partner without partner_id": (service_body(provider="partner"), {"partner_id"}),
    "district with a partner_id": (service_body(partner_id=str(uuid.uuid4())), {"partner_id"}),
    # Its partner is not onboarded either: listed in the same answer.
    "non-optional partner service": (_partner_service(non_optional=True), {"non_optional", "partner_id"}),
    "non-optional with a capacity": (service_body(non_optional=True, capacity_per_year=10), {"capacity_per_year"}),
    "negative price": (service_body(price="-1"), {"price"}),
    "fractions of cents": (service_body(price="10.001"), {"price"}),
    "unknown category": (service_body(category="catering"), {"category"}),
    "unknown unit": (service_body(unit="per_hour"), {"unit"}),
    "unknown need and lever": (service_body(needs=["happiness"], levers=["weather"]), {"needs.0", "levers.0"}),
    "a need twice": (service_body(needs=["math", "math"]), {"needs"}),
    "zero capacity": (service_body(capacity_per_year=0), {"capacity_per_year"}),
    "unknown field": (service_body(discount="10%"), {"discount"}),
    "empty name": (service_body(name=""), {"name"}),
}


@pytest.mark.parametrize("case", INVALID_SERVICES, ids=list(INVALID_SERVICES))
async def test_an_invalid_service_is_422_naming_every_field_and_stores_nothing(zone_stack, zone_id, case):
    zone = await catalog_zone(zone_stack, zone_id)
    body, fields = INVALID_SERVICES[case]
    before = await zone.footprint()
    assert_invalid_fields(await zone.request("POST", "/services", zone.staff(), json=body), fields)
    assert await zone.footprint() == before


async def test_a_partner_service_needs_a_partner_onboarded_in_this_zone(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    other = await catalog_zone(zone_stack, f"{zone_id}-o")
    foreign_partner = await other.add_partner()
    before = await zone.footprint()
    for partner_id in (foreign_partner, str(uuid.uuid4())):
        body = service_body(provider="partner", partner_id=partner_id)
        assert_invalid_fields(await zone.request("POST", "/services", zone.staff(), json=body), {"partner_id"})
    assert await zone.footprint() == before


async def test_only_district_and_zone_staff_change_the_catalog(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    draft = await zone.add_service(publish=False)
    partner_id = await zone.add_partner()
    before = await zone.footprint()
    wrong = [zone.team(), zone.staff("board"), zone.partner(partner_id), zone.stack.auth("sis", zone_id, [zone.school_id])]

    for headers in wrong:
        assert_problem(await zone.request("POST", "/services", headers, json=service_body(name="Other")), 403)
        for action in ("publish", "retire"):
            assert_problem(await zone.request("POST", f"/services/{draft['id']}/{action}", headers), 403)
    elsewhere = zone.stack.auth("district", f"{zone_id}-x")
    assert_problem(await zone.request("POST", "/services", elsewhere, json=service_body(name="Other")), 404)
    for action in ("publish", "retire"):
        assert_problem(await zone.request("POST", f"/services/{draft['id']}/{action}", elsewhere), 404)
    assert_problem(await zone.request("GET", "/services", elsewhere), 404)
    assert_problem(await zone.request("POST", f"/services/{uuid.uuid4()}/publish", zone.staff()), 404)
    assert await zone.footprint() == before
    assert (await zone.request("GET", f"/services/{draft['id']}", zone.staff())).json()["status"] == "draft"


async def test_a_retired_service_leaves_the_catalog_keeps_its_orders_and_is_not_published_again(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    order = await zone.placed(service["id"], 10)
    path = f"/services/{service['id']}"

    retired = await zone.request("POST", f"{path}/retire", zone.staff())
    assert (retired.status_code, retired.json()["status"]) == (200, "retired")
    assert (await zone.request("POST", f"{path}/retire", zone.staff())).json()["retired_at"] == retired.json()["retired_at"]
    assert assert_problem(await zone.request("POST", f"{path}/publish", zone.staff()), 409)["service_status"] == "retired"
    assert_problem(await zone.request("GET", path, zone.team()), 404)
    assert (await zone.request("GET", f"/orders/{order['id']}", zone.team())).json()["status"] == "requested"
    assert await zone.scalar("SELECT count(*) FROM catalog.audit_log WHERE entity_id = :s AND action = 'service.retired'",
                             s=service["id"]) == 1


async def test_the_catalog_filters_by_category_provider_and_non_optional(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    partner_id = await zone.add_partner()
    assessments = await zone.add_service()
    facilities = await zone.add_service(name="Facilities", category="facilities", non_optional=True, needs=["operations"])
    coaching = await zone.partner_service(partner_id)

    async def listed(**params: object) -> list[str]:
        response = await zone.request("GET", "/services", zone.partner(partner_id), params=params)
        assert response.status_code == 200, response.text
        return sorted(s["id"] for s in response.json())

    assert await listed() == sorted([assessments["id"], facilities["id"], coaching["id"]])
    assert await listed(category="facilities") == [facilities["id"]]
    assert await listed(provider="partner") == [coaching["id"]]
    assert await listed(partner_id=partner_id) == [coaching["id"]]
    assert await listed(non_optional="true") == [facilities["id"]]
    invalid = assert_problem(await zone.request("GET", "/services", zone.staff(), params={"category": "catering"}), 422)
    assert [e["pointer"] for e in invalid["errors"]] == ["/query/category"]


async def test_a_partner_service_names_its_partner_and_the_partners_current_vetting(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    vetted_id = await zone.add_partner()
    unvetted_id = await zone.add_partner("Springfield Reading Partners", vetting=None)
    coaching = await zone.partner_service(vetted_id)
    tutoring = await zone.partner_service(unvetted_id, name="Reading tutoring")
    district = await zone.add_service()

    listed = {s["id"]: s["partner"] for s in (await zone.request("GET", "/services", zone.team())).json()}
    shown = (await zone.request("GET", f"/services/{coaching['id']}", zone.team())).json()["partner"]

    vetting = (await zone.request("GET", f"/partners/{vetted_id}", zone.staff())).json()["vetting"]
    assert shown == listed[coaching["id"]] == coaching["partner"] == {
        "id": vetted_id, "name": "Pioneer Valley Math Collaborative", "vetting_status": "vetted",
        "vetting_expires_on": vetting["expires_on"], "vetted": True}
    assert listed[tutoring["id"]] == {"id": unvetted_id, "name": "Springfield Reading Partners",
                                      "vetting_status": None, "vetting_expires_on": None, "vetted": False}
    assert listed[district["id"]] is None
    # A revoked vetting shows at once on the partner's services.
    revoked = await zone.request("POST", f"/partners/{vetted_id}/vettings", zone.staff(), json=vetting_body("revoked"))
    assert revoked.status_code == 201, revoked.text
    shown = (await zone.request("GET", f"/services/{coaching['id']}", zone.team())).json()["partner"]
    assert (shown["vetting_status"], shown["vetted"]) == ("revoked", False)


async def test_malformed_requests_to_every_write_endpoint_are_problems_and_store_nothing(zone_stack, zone_id):
    zone = await catalog_zone(zone_stack, zone_id)
    await zone.approve_plan("20000.00")
    service = await zone.add_service()
    order = await zone.placed(service["id"])
    partner_id = await zone.add_partner()
    before = await zone.footprint()
    team, staff = {**zone.team(), "Idempotency-Key": "k"}, zone.staff()
    json_body = {"Content-Type": "application/json"}

    for path, headers in (("/services", staff), ("/partners", staff), (f"/partners/{partner_id}/vettings", staff),
                          (f"/schools/{zone.school_id}/orders", team), (f"/orders/{order['id']}/reject", staff)):
        for raw in (b'{"name": ', b"name=x", b""):
            response = await zone.request("POST", path, {**headers, **json_body}, content=raw)
            assert_problem(response, 422)
    for path, headers in (("/services/not-an-id/publish", staff), ("/services/not-an-id/retire", staff),
                          ("/orders/not-an-id/confirm", staff), ("/orders/not-an-id/fulfil", staff),
                          (f"/schools/{zone.school_id}/orders/not-an-id/cancel", zone.team()),
                          ("/schools/not-an-id/orders", team), ("/partners/not-an-id/vettings", staff)):
        errors = assert_problem(await zone.request("POST", path, headers), 422)["errors"]
        assert any(error["pointer"].startswith("/path/") for error in errors), errors
    assert await zone.footprint() == before
