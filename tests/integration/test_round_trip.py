"""Every resource a client can change can be written back exactly as a GET returned it: 200, and nothing changes.

Each case reads a resource, writes what it read back through the resource's own write (PUT, PATCH, or the
idempotent POST for resources created once), and reads it again. Ids and read-only fields travel with the body;
an id that does not match is refused with a reason (tested after the round trips).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.helpers import register_school
from tests.integration.catalog.support import catalog_zone
from tests.integration.plans.plan_helpers import plan_body, plan_school
from tests.stack import Stack


@dataclass
class RoundTrip:
    """Where a resource is read, how what was read is written back, and the headers of both."""

    service: str
    read: str
    write: Callable[[dict], tuple[str, str, dict]]  # what was read -> (method, path, body)
    headers: dict[str, str]
    write_headers: Callable[[httpx.Response], dict[str, str]] = lambda read: {}
    unchanged: Callable[[dict], object] = lambda resource: resource
    pick: Callable[[object], dict] = lambda read: read  # the resource, from a list when there is no GET of one


def _one(id_: str) -> Callable[[object], dict]:
    return lambda listed: next(item for item in listed if item["id"] == id_)


async def _call(stack: Stack, service: str, method: str, path: str, headers: dict[str, str],
                **kwargs: object) -> httpx.Response:
    return await stack.clients[service].request(method, path, headers=headers, **kwargs)


async def _plans_cases(stack: Stack, zone_id: str) -> dict[str, RoundTrip]:
    school = await plan_school(stack, zone_id)
    z = f"/zones/{zone_id}"
    admin = stack.auth("admin", zone_id)
    team = stack.auth("school", zone_id, [school.school_id])
    created = await _call(stack, "plans", "POST", f"{z}/schools/{school.school_id}/plans", team, json=plan_body())
    assert created.status_code == 201, created.text
    leader = await _call(stack, "plans", "POST", f"{z}/schools/{school.school_id}/leadership",
                         stack.auth("district", zone_id), json={"name": "Ana Principal", "subject": f"principal@{zone_id}", "role": "principal"})
    assert leader.status_code == 201, leader.text
    member_id = (await _call(stack, "plans", "GET", f"{z}/board-members", admin)).json()[0]["id"]
    plan = f"{z}/schools/{school.school_id}/plans/2025-26"
    return {
        "zone": RoundTrip("plans", z, lambda zone: ("PATCH", z, zone), admin),
        "school": RoundTrip("plans", f"{z}/schools/{school.school_id}",
                            lambda read: ("PATCH", f"{z}/schools/{school.school_id}", read), admin,
                            write_headers=lambda read: {"If-Match": read.headers["ETag"]}),
        "board member": RoundTrip("plans", f"{z}/board-members",
                                  lambda read: ("PATCH", f"{z}/board-members/{member_id}", read), admin,
                                  pick=_one(member_id)),
        "leadership member": RoundTrip("plans", f"{z}/schools/{school.school_id}/leadership",
                                       lambda read: ("PATCH", f"{z}/schools/{school.school_id}/leadership/{read['id']}",
                                                     read),
                                       admin, pick=_one(leader.json()["id"])),
        "policy": RoundTrip("plans", f"{z}/policy", lambda read: ("PUT", f"{z}/policy", read["document"]), admin,
                            write_headers=lambda read: {"If-Match": read.headers["ETag"]}),
        "operating plan": RoundTrip("plans", plan, lambda read: ("PUT", plan, read["open_version"]["content"]), team,
                                    write_headers=lambda read: {"If-Match": read.headers["ETag"]},
                                    unchanged=lambda read: read["open_version"]["content"]),
    }


async def _catalog_cases(stack: Stack, zone_id: str) -> dict[str, RoundTrip]:
    zone = await catalog_zone(stack, zone_id)
    z = f"/zones/{zone_id}"
    partner_id = await zone.add_partner()
    service = await zone.add_service()
    await zone.approve_plan("10000.00")
    key = str(uuid.uuid4())
    order = await zone.placed(service["id"], 10, key=key)
    orders = f"{z}/schools/{zone.school_id}/orders"
    return {
        "service": RoundTrip("services-catalog", f"{z}/services/{service['id']}",
                             lambda read: ("POST", f"{z}/services", read), zone.staff()),
        "partner": RoundTrip("services-catalog", f"{z}/partners/{partner_id}",
                             lambda read: ("POST", f"{z}/partners", read), zone.staff()),
        "order": RoundTrip("services-catalog", f"{z}/orders/{order['id']}", lambda read: ("POST", orders, read),
                           zone.team(), write_headers=lambda read: {"Idempotency-Key": key}),
    }


async def _notifications_cases(stack: Stack, zone_id: str) -> dict[str, RoundTrip]:
    z = f"/zones/{zone_id}"
    member = stack.auth("district", zone_id)
    preferences = f"{z}/members/me/preferences"
    put = await _call(stack, "notifications", "PUT", preferences, member,
                      json={"timezone": "America/New_York",
                            "channels": {"critical": ["email"], "warning": [], "info": []},
                            "email": "district@springfield.example"})
    assert put.status_code == 200, put.text
    webhook = await _call(stack, "notifications", "POST", f"{z}/webhooks", member,
                          json={"url": f"https://hooks.example.org/{zone_id}", "description": "Our SIS"})
    assert webhook.status_code == 201, webhook.text
    rule = await _call(stack, "notifications", "PUT", f"{z}/alert-rules/orders", member,
                       json={"event_type": "order.rejected", "severity": "info", "audiences": ["school_team"]})
    assert rule.status_code == 201, rule.text
    return {
        "preferences": RoundTrip("notifications", preferences, lambda read: ("PUT", preferences, read), member),
        "webhook": RoundTrip("notifications", f"{z}/webhooks/{webhook.json()['id']}",
                             lambda read: ("POST", f"{z}/webhooks", read), member),
        "alert rule": RoundTrip("notifications", f"{z}/alert-rules",
                                lambda read: ("PUT", f"{z}/alert-rules/orders", read), member,
                                pick=lambda rules: next(rule for rule in rules if rule["name"] == "orders")),
    }


CASES: dict[str, Callable[[Stack, str], Awaitable[dict[str, RoundTrip]]]] = {
    "plans": _plans_cases, "services-catalog": _catalog_cases, "notifications": _notifications_cases,
}


@pytest.mark.parametrize("service", CASES)
async def test_every_resource_written_back_as_read_answers_200_and_changes_nothing(zone_stack, zone_id, service):
    refused = {}
    for name, case in (await CASES[service](zone_stack, zone_id)).items():
        before = await _call(zone_stack, case.service, "GET", case.read, case.headers)
        assert before.status_code == 200, (name, before.text)
        resource = case.pick(before.json())
        method, path, body = case.write(resource)
        written = await _call(zone_stack, case.service, method, path, {**case.headers, **case.write_headers(before)},
                              json=body)
        after = case.pick((await _call(zone_stack, case.service, "GET", case.read, case.headers)).json())
        if written.status_code != 200 or case.unchanged(after) != case.unchanged(resource):
            refused[name] = (written.status_code, written.text[:600])
    assert refused == {}


async def test_an_id_written_back_that_names_another_resource_is_refused_with_the_reason(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    other = await register_school(zone_stack, zone_id)
    path = f"/zones/{zone_id}/schools/{school.school_id}"
    admin = zone_stack.auth("admin", zone_id)
    read = (await _call(zone_stack, "plans", "GET", path, admin)).json()
    response = await _call(zone_stack, "plans", "PATCH", path, admin,
                           json={**read, "id": other["id"], "code": other["code"], "name": "Renamed"})
    assert response.status_code == 422, response.text
    errors = {error["field"]: error for error in response.json()["errors"]}
    assert set(errors) == {"id", "code"}
    assert school.school_id in errors["id"]["reason"] and "read-only" in errors["id"]["reason"]
    assert (await _call(zone_stack, "plans", "GET", path, admin)).json()["name"] == read["name"]
