"""Changing a zone and its schools: conventions, PATCH with If-Match, school.updated on the broker and in the projections."""

from __future__ import annotations

import secrets

import httpx
import pytest
from ezone_schemas import SchoolUpdated
from ezone_schemas.topics import PLANS
from sqlalchemy import text

from tests.events import published_events
from tests.helpers import DUGGAN_NAME, duggan, register_school, register_zone, scalar, wait_for_count
from tests.integration.plans.support import (
    assert_invalid_fields, assert_problem, audit_entries, call, footprint, outbox_count,
)
from tests.integration.test_registry_api import sent_at_once
from tests.stack import Stack


async def school_with_etag(stack: Stack, zone_id: str, registration: dict | None = None) -> tuple[str, str]:
    await register_zone(stack, zone_id)
    school_id = (await register_school(stack, zone_id, registration))["id"]
    response = await call(stack, "GET", f"/zones/{zone_id}/schools/{school_id}")
    return school_id, response.headers["etag"]


async def patch_school(stack: Stack, zone_id: str, school_id: str, body: dict, etag: str | None, role: str = "admin",
                       zone: str | None = None) -> httpx.Response:
    headers = {"If-Match": etag} if etag is not None else {}
    return await call(stack, "PATCH", f"/zones/{zone_id}/schools/{school_id}", role, zone, json=body, headers=headers)


# Zones


async def test_zone_conventions_default_to_july_and_september_and_can_be_registered_otherwise(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    default = (await call(zone_stack, "GET", f"/zones/{zone_id}")).json()
    assert (default["fiscal_year_start_month"], default["school_year_start_month"]) == (7, 9)

    other = f"{zone_id}-b"
    body = {"id": other, "name": "B", "district": "D", "fiscal_year_start_month": 1, "school_year_start_month": 8}
    response = await call(zone_stack, "POST", "/zones", zone=other, json=body)
    assert response.status_code == 201, response.text
    assert (response.json()["fiscal_year_start_month"], response.json()["school_year_start_month"]) == (1, 8)
    # The same zone with another convention is other details, not the same registration.
    assert_problem(await call(zone_stack, "POST", "/zones", zone=other, json={**body, "school_year_start_month": 9}), 409)


async def test_zone_patch_with_every_field_wrong_is_422_listing_all_and_changes_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    body = {"name": None, "district": "", "fiscal_year_start_month": 13, "school_year_start_month": 0, "colour": "red"}
    response = await call(zone_stack, "PATCH", f"/zones/{zone_id}", json=body)
    assert_invalid_fields(response, {"name", "district", "fiscal_year_start_month", "school_year_start_month", "colour"})
    # The zone as read may be sent back, but not under another zone's id.
    assert_invalid_fields(await call(zone_stack, "PATCH", f"/zones/{zone_id}", json={"id": "other", "name": "Renamed"}),
                          {"id"})
    assert await footprint(zone_stack, zone_id) == before


async def test_zone_patch_changes_only_what_is_sent_audits_before_and_after_and_a_repeat_changes_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    change = {"name": "Springfield Empowerment Zone", "fiscal_year_start_month": 1}

    first = await call(zone_stack, "PATCH", f"/zones/{zone_id}", json=change)
    second = await call(zone_stack, "PATCH", f"/zones/{zone_id}", json=change)

    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json() == second.json()
    assert first.json() | change == first.json()
    assert (first.json()["district"], first.json()["school_year_start_month"]) == ("Springfield", 9)
    assert await audit_entries(zone_stack, "zone.updated", zone_id) == 1
    async with zone_stack.kits["plans"].engine.connect() as conn:
        entry = (await conn.execute(text(
            "SELECT before, after FROM plans.audit_log WHERE action = 'zone.updated' AND entity_id = :z"), {"z": zone_id}
        )).mappings().one()
    assert entry["before"] == {"name": f"Zone {zone_id}", "district": "Springfield", "fiscal_year_start_month": 7,
                               "school_year_start_month": 9}
    assert entry["after"] == entry["before"] | change


async def test_zone_patch_by_another_zones_admin_is_404_and_by_district_staff_403_and_changes_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    stranger = await call(zone_stack, "PATCH", f"/zones/{zone_id}", zone=f"{zone_id}-other", json={"name": "Taken"})
    assert_problem(stranger, 404)
    assert f"Zone {zone_id}" not in stranger.text and "Springfield" not in stranger.text
    assert_problem(await call(zone_stack, "PATCH", f"/zones/{zone_id}", "district", json={"name": "Taken"}), 403)
    assert await footprint(zone_stack, zone_id) == before


# Schools


async def test_school_shows_its_tier_and_an_etag_that_a_change_moves(zone_stack, zone_id):
    school_id, etag = await school_with_etag(zone_stack, zone_id)
    school = (await call(zone_stack, "GET", f"/zones/{zone_id}/schools/{school_id}")).json()
    assert school["tier"] == "standard"
    assert etag.startswith('"') and etag.endswith('"')

    response = await patch_school(zone_stack, zone_id, school_id, {"enrollment": 1001}, etag)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] != etag
    assert (await call(zone_stack, "GET", f"/zones/{zone_id}/schools/{school_id}")).headers["etag"] == response.headers["etag"]


async def test_school_patch_with_every_field_wrong_is_422_listing_all_and_stores_and_announces_nothing(zone_stack, zone_id):
    school_id, etag = await school_with_etag(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    body = {"name": None, "grade_span": "8-6", "enrollment": -1, "colour": "red"}
    response = await patch_school(zone_stack, zone_id, school_id, body, etag)
    assert_invalid_fields(response, {"name", "grade_span", "enrollment", "colour"})
    # The code identifies the school and cannot change; the tier, read-only, is ignored.
    response = await patch_school(zone_stack, zone_id, school_id, {"code": "99999999", "name": "Renamed", "tier": "full"},
                                  etag)
    assert_invalid_fields(response, {"code"})
    assert await footprint(zone_stack, zone_id) == before


async def test_school_patch_without_if_match_is_428_and_with_a_stale_one_412_and_changes_nothing(zone_stack, zone_id):
    school_id, etag = await school_with_etag(zone_stack, zone_id)
    assert (await patch_school(zone_stack, zone_id, school_id, {"enrollment": 990}, etag)).status_code == 200
    before = await footprint(zone_stack, zone_id)

    assert_problem(await patch_school(zone_stack, zone_id, school_id, {"name": "Duggan Middle"}, None), 428)
    assert_problem(await patch_school(zone_stack, zone_id, school_id, {"name": "Duggan Middle"}, etag), 412)
    assert_problem(await patch_school(zone_stack, zone_id, school_id, {"name": "Duggan Middle"}, f"W/{etag}"), 412)
    assert await footprint(zone_stack, zone_id) == before
    assert await scalar(zone_stack, "SELECT name FROM plans.schools WHERE id = :id", id=school_id) == DUGGAN_NAME


async def test_school_patch_announces_the_full_new_state_on_the_broker_once_even_when_sent_twice(zone_stack, zone_id):
    registration = duggan()
    school_id, etag = await school_with_etag(zone_stack, zone_id, registration)
    change = {"name": "Duggan Middle School", "grade_span": "6-8"}
    trace_id = secrets.token_hex(16)
    headers = {"If-Match": etag, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}

    first = await call(zone_stack, "PATCH", f"/zones/{zone_id}/schools/{school_id}", json=change, headers=headers)
    # The retry of a PATCH that succeeded: its If-Match is stale, but the school already is what it asks for.
    second = await call(zone_stack, "PATCH", f"/zones/{zone_id}/schools/{school_id}", json=change, headers=headers)

    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json() == second.json() == {**first.json(), **change, "code": registration["code"], "enrollment": 980}
    assert await outbox_count(zone_stack, SchoolUpdated.ce_type, school_id) == 1
    assert await audit_entries(zone_stack, "school.updated", school_id) == 1
    events = await published_events(zone_stack, PLANS, SchoolUpdated.ce_type, key=school_id)
    assert len(events) == 1
    event = events[0]
    assert {k: event[k] for k in ("zone_id", "school_id", "code", "name", "grade_span", "enrollment")} == {
        "zone_id": zone_id, "school_id": school_id, **registration, **change}
    assert trace_id in event["_headers"]["traceparent"]
    async with zone_stack.kits["plans"].engine.connect() as conn:
        entry = (await conn.execute(text(
            "SELECT before, after, school_id, trace_id FROM plans.audit_log WHERE action = 'school.updated' AND entity_id = :id"),
            {"id": school_id})).mappings().one()
    assert (entry["before"], entry["after"]) == (registration, registration | change)
    assert (entry["school_id"], entry["trace_id"]) == (school_id, trace_id)


async def test_school_patch_that_changes_nothing_answers_200_and_announces_and_audits_nothing(zone_stack, zone_id):
    school_id, etag = await school_with_etag(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    response = await patch_school(zone_stack, zone_id, school_id, {"name": DUGGAN_NAME, "enrollment": 980}, etag)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == etag
    assert await footprint(zone_stack, zone_id) == before


async def test_the_results_projection_of_the_school_follows_its_change(zone_stack, zone_id):
    school_id, etag = await school_with_etag(zone_stack, zone_id)
    response = await patch_school(zone_stack, zone_id, school_id, {"name": "Duggan Academy", "enrollment": 1010}, etag, "district")
    assert response.status_code == 200, response.text

    await wait_for_count(zone_stack, "SELECT count(*) FROM results.schools WHERE id = :id AND name = 'Duggan Academy' "
                                     "AND enrollment = 1010", 1, id=school_id)
    listed = await zone_stack.clients["results"].get(f"/zones/{zone_id}/schools", headers=zone_stack.auth("board", zone_id))
    assert [(s["name"], s["enrollment"]) for s in listed.json()] == [("Duggan Academy", 1010)]


@pytest.mark.parametrize(("role", "token_zone", "status"), [("admin", "elsewhere", 404), ("board", None, 403),
                                                            ("school", None, 403), ("sis", None, 403)])
async def test_school_patch_by_a_caller_who_may_not_is_refused_and_changes_nothing(zone_stack, zone_id, role, token_zone, status):
    school_id, etag = await school_with_etag(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    zone = f"{zone_id}-{token_zone}" if token_zone else zone_id
    response = await call(zone_stack, "PATCH", f"/zones/{zone_id}/schools/{school_id}", role, zone, schools=[school_id],
                          json={"name": "Taken"}, headers={"If-Match": etag})
    assert_problem(response, status)
    assert DUGGAN_NAME not in response.text and "etag" not in response.headers
    assert await footprint(zone_stack, zone_id) == before


async def test_two_edits_from_the_same_read_at_once_let_exactly_one_win(zone_stack, zone_id):
    school_id, etag = await school_with_etag(zone_stack, zone_id)
    edits = [patch_school(zone_stack, zone_id, school_id, {"enrollment": n}, etag) for n in (1001, 1002)]

    responses = await sent_at_once(zone_stack, "plans.schools", edits)

    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
    assert await outbox_count(zone_stack, SchoolUpdated.ce_type, school_id) == 1
    assert await audit_entries(zone_stack, "school.updated", school_id) == 1


async def test_school_patch_of_a_school_that_is_not_in_the_zone_is_404(zone_stack, zone_id):
    _, etag = await school_with_etag(zone_stack, zone_id)
    other_zone = f"{zone_id}-b"
    await register_zone(zone_stack, other_zone)
    elsewhere = (await register_school(zone_stack, other_zone))["id"]

    response = await patch_school(zone_stack, zone_id, elsewhere, {"name": "Taken"}, etag)
    assert_problem(response, 404)
    assert await scalar(zone_stack, "SELECT name FROM plans.schools WHERE id = :id", id=elsewhere) == DUGGAN_NAME
