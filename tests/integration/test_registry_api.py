"""The registry's write endpoints on plans: bad input, repeats, conflicts and their audit trail."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Coroutine

import httpx
import pytest
from ezone_schemas import SchoolRegistered, ZoneRegistered
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.helpers import duggan, register_school, register_zone, scalar, school_code, wait_for_count
from tests.stack import Stack

PROJECTION_SCHEMAS = ("results", "catalog", "notifications")


def zone_body(zone_id: str) -> dict:
    return {"id": zone_id, "name": f"Zone {zone_id}", "district": "Springfield"}


async def post_zone(stack: Stack, body: dict, token_zone: str | None = None) -> httpx.Response:
    """As the admin of `token_zone`, by default the zone in the body."""
    return await stack.clients["plans"].post("/zones", json=body, headers=stack.auth("admin", token_zone or body["id"]))


async def post_school(stack: Stack, zone_id: str, body: dict, headers: dict[str, str] | None = None) -> httpx.Response:
    return await stack.clients["plans"].post(f"/zones/{zone_id}/schools", json=body, headers=headers or stack.auth("admin", zone_id))


async def footprint(stack: Stack, zone_id: str) -> dict[str, int]:
    """Every row plans keeps about a zone: a rejected request must leave it as it was."""
    queries = {
        "zones": "SELECT count(*) FROM plans.zones WHERE id = :z",
        "schools": "SELECT count(*) FROM plans.schools WHERE zone_id = :z",
        "outbox": "SELECT count(*) FROM plans.outbox WHERE payload->>'zone_id' = :z",
        "audit_log": "SELECT count(*) FROM plans.audit_log WHERE zone_id = :z",
    }
    return {table: await scalar(stack, sql, z=zone_id) for table, sql in queries.items()}


NOTHING = {"zones": 0, "schools": 0, "outbox": 0, "audit_log": 0}
# A registered zone: its row, and for each of zone.registered and policy version 1 an event and an audit entry.
JUST_THE_ZONE = {"zones": 1, "schools": 0, "outbox": 2, "audit_log": 2}


async def outbox_rows(stack: Stack, event: type, entity_key: str) -> int:
    return await scalar(stack, "SELECT count(*) FROM plans.outbox WHERE ce_type = :t AND key = :k", t=event.ce_type, k=entity_key)


async def audit_rows(stack: Stack, action: str, entity_id: str) -> int:
    return await scalar(stack, "SELECT count(*) FROM plans.audit_log WHERE action = :a AND entity_id = :e", a=action, e=entity_id)


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


def assert_invalid_fields(response: httpx.Response, fields: set[str]) -> None:
    """A 422 that lists every bad field at once, each with where, which and why."""
    body = assert_problem(response, 422)
    for error in body["errors"]:
        assert error["pointer"] and error["reason"], error
    assert {error["field"] for error in body["errors"]} == fields, body["errors"]
    assert {error["pointer"] for error in body["errors"]} == {f"/body/{field}" for field in fields}


async def test_zone_with_an_invalid_id_and_no_name_is_422_listing_both_and_stores_nothing(zone_stack, zone_id):
    bad_id = "Not A Slug!"
    response = await post_zone(zone_stack, {"id": bad_id, "district": "Springfield"}, token_zone=zone_id)
    assert_invalid_fields(response, {"id", "name"})
    assert await footprint(zone_stack, zone_id) == NOTHING
    assert await footprint(zone_stack, bad_id) == NOTHING


@pytest.mark.parametrize("grade_span", ["8-6", "13-14"])
async def test_school_with_every_field_wrong_is_422_listing_all_of_them_and_stores_nothing(zone_stack, zone_id, grade_span):
    await register_zone(zone_stack, zone_id)
    school = {"code": "not a code!", "name": "Duggan", "grade_span": grade_span, "enrollment": -1, "principal": "Ms. Ruiz"}
    assert_invalid_fields(await post_school(zone_stack, zone_id, school), {"code", "grade_span", "enrollment", "principal"})
    assert await footprint(zone_stack, zone_id) == JUST_THE_ZONE


async def test_grade_span_with_a_trailing_newline_is_422_like_any_malformed_span(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    assert_invalid_fields(await post_school(zone_stack, zone_id, {**duggan(), "grade_span": "6-12\n"}), {"grade_span"})
    assert await footprint(zone_stack, zone_id) == JUST_THE_ZONE


@pytest.mark.parametrize(
    "raw_body", [b'{"code": "02810505", "name": ', b"code=02810505", b""], ids=["truncated-json", "not-json", "empty"]
)
async def test_malformed_json_is_a_problem_not_a_stack_trace_and_stores_nothing(zone_stack, zone_id, raw_body):
    await register_zone(zone_stack, zone_id)
    json_content = {"Content-Type": "application/json"}
    admin = zone_stack.auth("admin", zone_id)

    for path in ("/zones", f"/zones/{zone_id}/schools"):
        response = await zone_stack.clients["plans"].post(path, content=raw_body, headers={**admin, **json_content})
        assert response.status_code in (400, 422), f"{path}: {response.text}"
        assert_problem(response, response.status_code)
    assert await footprint(zone_stack, zone_id) == JUST_THE_ZONE


async def test_registering_the_same_zone_twice_answers_200_with_one_event_and_one_audit_entry(zone_stack, zone_id):
    first = await post_zone(zone_stack, zone_body(zone_id))
    second = await post_zone(zone_stack, zone_body(zone_id))

    assert (first.status_code, second.status_code) == (201, 200), second.text
    assert second.json() == first.json()
    assert await outbox_rows(zone_stack, ZoneRegistered, zone_id) == 1
    assert await audit_rows(zone_stack, "zone.registered", zone_id) == 1


async def test_registering_the_same_school_twice_answers_200_not_created_with_one_event_audit_entry_and_projection_row(
    zone_stack, zone_id
):
    await register_zone(zone_stack, zone_id)
    school = duggan()
    first = await post_school(zone_stack, zone_id, school)
    second = await post_school(zone_stack, zone_id, school)

    assert (first.status_code, second.status_code) == (201, 200), second.text
    assert (first.json()["created"], second.json()["created"]) == (True, False)
    assert {**second.json(), "created": True} == first.json()
    school_id = first.json()["id"]
    assert await outbox_rows(zone_stack, SchoolRegistered, school_id) == 1
    assert await audit_rows(zone_stack, "school.registered", school_id) == 1
    for schema in PROJECTION_SCHEMAS:
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE zone_id = :z", 1, z=zone_id)


async def sent_at_once(stack: Stack, table: str, requests: list[Coroutine]) -> list[httpx.Response | BaseException]:
    """Sends the requests so that every one has looked for an existing row before any of them writes one.

    That is the window a client's retry hits when it overtakes its first attempt. A lock on `table` stalls
    the writes until every request waits on some lock, so the race happens on every run, whatever the fix.
    """
    async with stack.kits["plans"].engine.connect() as conn:
        await conn.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
        in_flight = [asyncio.ensure_future(request) for request in requests]
        await wait_for_count(
            stack, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            len(in_flight), timeout_s=10,
        )
        await conn.rollback()
    # The in-process transport re-raises what a server would answer with a 500: keep it as a result.
    return await asyncio.gather(*in_flight, return_exceptions=True)


def assert_one_created_and_the_rest_found(responses: list[httpx.Response | BaseException]) -> None:
    failures = [r for r in responses if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of {len(responses)} simultaneous requests failed: {failures[0]!r}"
    assert sorted(r.status_code for r in responses) == [200] * (len(responses) - 1) + [201], [r.text for r in responses]


async def test_the_same_school_sent_twice_at_once_is_registered_once_and_both_requests_succeed(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    school = duggan()
    responses = await sent_at_once(zone_stack, "plans.schools",
                                   [post_school(zone_stack, zone_id, school) for _ in range(2)])

    assert_one_created_and_the_rest_found(responses)
    assert await footprint(zone_stack, zone_id) == JUST_THE_ZONE | {"schools": 1, "outbox": 3, "audit_log": 3}


async def test_the_same_zone_sent_twice_at_once_is_registered_once_and_both_requests_succeed(zone_stack, zone_id):
    responses = await sent_at_once(zone_stack, "plans.zones", [post_zone(zone_stack, zone_body(zone_id)) for _ in range(2)])

    assert_one_created_and_the_rest_found(responses)
    assert await footprint(zone_stack, zone_id) == JUST_THE_ZONE


@pytest.mark.parametrize("change", [{"name": "Duggan Middle"}, {"grade_span": "6-8"}, {"enrollment": 981}],
                         ids=["name", "grade_span", "enrollment"])
async def test_the_same_school_code_with_other_details_is_409_naming_the_code_and_changes_nothing(zone_stack, zone_id, change):
    await register_zone(zone_stack, zone_id)
    registration = duggan()
    school = await register_school(zone_stack, zone_id, registration)
    before = await footprint(zone_stack, zone_id)

    body = assert_problem(await post_school(zone_stack, zone_id, {**registration, **change}), 409)
    assert registration["code"] in body["detail"]
    assert await footprint(zone_stack, zone_id) == before
    stored = await zone_stack.clients["plans"].get(f"/zones/{zone_id}/schools/{school['id']}", headers=zone_stack.auth("admin", zone_id))
    assert {**stored.json(), "created": True} == school


@pytest.mark.parametrize("written", [str, lambda code: code.lstrip("0")], ids=["same-code", "without-zero-padding"])
async def test_a_school_code_another_zone_holds_is_409_naming_that_zone_and_changes_nothing(zone_stack, zone_id,
                                                                                            written):
    owner = f"{zone_id}-owner"
    await register_zone(zone_stack, owner)
    await register_zone(zone_stack, zone_id)
    school = {**duggan(), "code": f"0{school_code()[1:]}"}  # as the state writes it: eight digits, zero-padded
    held = await register_school(zone_stack, owner, school)

    body = assert_problem(await post_school(zone_stack, zone_id, {**school, "code": written(school["code"])}), 409)

    assert owner in body["detail"] and body["owner_zone"] == owner, body
    assert await footprint(zone_stack, zone_id) == JUST_THE_ZONE
    for schema in PROJECTION_SCHEMAS:
        await wait_for_count(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :s", 1, s=held["id"])
        assert await scalar(zone_stack, f"SELECT count(*) FROM {schema}.schools WHERE zone_id = :z", z=zone_id) == 0


async def test_one_school_code_sent_by_two_zones_at_once_goes_to_one_of_them(zone_stack, zone_id):
    other = f"{zone_id}-other"
    for zone in (zone_id, other):
        await register_zone(zone_stack, zone)
    school = duggan()
    responses = await sent_at_once(zone_stack, "plans.schools",
                                   [post_school(zone_stack, zone, school) for zone in (zone_id, other)])

    assert not [r for r in responses if isinstance(r, BaseException)], responses
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 201).json()["zone_id"]
    assert next(r for r in responses if r.status_code == 409).json()["owner_zone"] == winner
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.schools WHERE code = :c", c=school["code"]) == 1


async def test_the_database_holds_one_school_per_state_code_whatever_writes_it(zone_stack, zone_id):
    """The rule is the database's, not only the API's: any path that writes schools (a seed, a script) meets it."""
    other = f"{zone_id}-other"
    for zone in (zone_id, other):
        await register_zone(zone_stack, zone)
    code = school_code()[1:]
    await register_school(zone_stack, zone_id, {**duggan(), "code": code})
    async with zone_stack.kits["plans"].engine.connect() as conn:
        for zone, written in ((other, code), (zone_id, f"0{code}")):
            with pytest.raises(IntegrityError, match="uq_schools_state_code"):
                await conn.execute(text(
                    "INSERT INTO plans.schools (id, zone_id, code, name, grade_span) "
                    "VALUES (gen_random_uuid(), :z, :c, 'Copy', '6-8')"), {"z": zone, "c": written})
            await conn.rollback()


async def test_the_same_zone_id_with_other_details_is_409_and_changes_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    assert_problem(await post_zone(zone_stack, {**zone_body(zone_id), "name": "Another name"}), 409)
    assert await footprint(zone_stack, zone_id) == JUST_THE_ZONE
    assert await scalar(zone_stack, "SELECT name FROM plans.zones WHERE id = :z", z=zone_id) == f"Zone {zone_id}"


async def test_school_in_a_zone_that_does_not_exist_is_404_and_stores_nothing(zone_stack, zone_id):
    assert_problem(await post_school(zone_stack, zone_id, duggan()), 404)
    assert await footprint(zone_stack, zone_id) == NOTHING


@pytest.mark.parametrize("path", ["/no-such-thing", "/zones/{zone}/buildings"])
async def test_unknown_route_is_404_problem_details(zone_stack, zone_id, path):
    response = await zone_stack.clients["plans"].get(path.format(zone=zone_id), headers=zone_stack.auth("admin", zone_id))
    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/zones", "POST"), ("PUT", "/zones/{zone}/schools", "POST"), ("POST", "/healthz", "GET")],
)
async def test_wrong_method_is_405_problem_details_naming_an_allowed_one(zone_stack, zone_id, method, path, allowed):
    response = await zone_stack.clients["plans"].request(method, path.format(zone=zone_id), headers=zone_stack.auth("admin", zone_id))
    assert_problem(response, 405)
    assert allowed in response.headers["allow"]


async def test_audit_entry_records_actor_role_zone_state_after_and_the_callers_trace_id(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    trace_id = secrets.token_hex(16)
    district_staff = zone_stack.token("district", zone_id, subject="ruiz@springfield.example")
    school = duggan()
    response = await post_school(
        zone_stack, zone_id, school,
        headers={"Authorization": f"Bearer {district_staff}", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert response.status_code == 201, response.text
    school_id = response.json()["id"]

    async with zone_stack.kits["plans"].engine.connect() as conn:
        entry = (await conn.execute(text(
            "SELECT actor, actor_role, zone_id, school_id, entity, after, trace_id FROM plans.audit_log "
            "WHERE action = 'school.registered' AND entity_id = :id"), {"id": school_id},
        )).mappings().one()
    assert entry["actor"] == "ruiz@springfield.example"
    assert (entry["actor_role"], entry["zone_id"], entry["school_id"], entry["entity"]) == ("district", zone_id, school_id, "school")
    assert entry["after"] == school
    assert re.fullmatch(r"[0-9a-f]{32}", entry["trace_id"]), entry["trace_id"]
    assert entry["trace_id"] == trace_id
