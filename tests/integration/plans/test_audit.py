"""Reading the audit trail by school and by plan: newest first, paged, and only for those who may."""

from __future__ import annotations

import json
import secrets
import uuid

import pytest
from sqlalchemy import text

from tests.helpers import DUGGAN_NAME, register_school, register_zone, school_code
from tests.integration.plans.support import assert_problem, call
from tests.stack import Stack

def other_school() -> dict:
    return {"code": school_code(), "name": "Other", "grade_span": "6-8"}


async def school_with_history(stack: Stack, zone_id: str) -> str:
    """A school registered, renamed, and given a principal: three entries, by three actors."""
    await register_zone(stack, zone_id)
    school_id = (await register_school(stack, zone_id))["id"]
    etag = (await call(stack, "GET", f"/zones/{zone_id}/schools/{school_id}")).headers["etag"]
    district = stack.token("district", zone_id, subject="ruiz@springfield.example")
    response = await stack.clients["plans"].patch(
        f"/zones/{zone_id}/schools/{school_id}", json={"name": "Duggan Academy"},
        headers={"Authorization": f"Bearer {district}", "If-Match": etag},
    )
    assert response.status_code == 200, response.text
    principal = {"name": "Maria Ruiz", "subject": "ruiz@idp.example", "role": "principal"}
    assert (await call(stack, "POST", f"/zones/{zone_id}/schools/{school_id}/leadership", json=principal)).status_code == 201
    return school_id


async def school_audit(stack: Stack, zone_id: str, school_id: str, role: str = "admin", zone: str | None = None,
                       schools: list[str] | None = None, **params: object):
    return await call(stack, "GET", f"/zones/{zone_id}/schools/{school_id}/audit", role, zone, schools=schools, params=params)


async def test_a_schools_trail_lists_every_change_newest_first_with_actor_states_and_trace(zone_stack, zone_id):
    school_id = await school_with_history(zone_stack, zone_id)

    response = await school_audit(zone_stack, zone_id, school_id)

    assert response.status_code == 200, response.text
    page = response.json()
    assert [e["action"] for e in page["entries"]] == ["leadership_member.added", "school.updated", "school.registered"]
    assert page["next_before"] is None
    renamed = page["entries"][1]
    assert (renamed["actor"], renamed["actor_role"], renamed["entity"], renamed["entity_id"]) == (
        "ruiz@springfield.example", "district", "school", school_id)
    assert (renamed["before"]["name"], renamed["after"]["name"]) == (DUGGAN_NAME, "Duggan Academy")
    assert all(len(e["trace_id"]) == 32 for e in page["entries"])
    assert {"at", "id"} <= renamed.keys()


async def test_a_schools_trail_pages_through_with_the_before_cursor(zone_stack, zone_id):
    school_id = await school_with_history(zone_stack, zone_id)
    everything = (await school_audit(zone_stack, zone_id, school_id)).json()["entries"]

    first = (await school_audit(zone_stack, zone_id, school_id, limit=2)).json()
    second = (await school_audit(zone_stack, zone_id, school_id, limit=2, before=first["next_before"])).json()

    assert first["entries"] + second["entries"] == everything
    assert (first["next_before"], second["next_before"]) == (everything[1]["id"], None)
    for limit in (0, 501):
        assert_problem(await school_audit(zone_stack, zone_id, school_id, limit=limit), 422)


@pytest.mark.parametrize("role", ["admin", "district", "board"])
async def test_zone_roles_read_any_schools_trail(zone_stack, zone_id, role):
    school_id = await school_with_history(zone_stack, zone_id)
    assert len((await school_audit(zone_stack, zone_id, school_id, role)).json()["entries"]) == 3


async def test_a_school_token_reads_its_own_schools_trail_only_and_sis_none(zone_stack, zone_id):
    school_id = await school_with_history(zone_stack, zone_id)
    other_id = (await register_school(zone_stack, zone_id, other_school()))["id"]

    assert (await school_audit(zone_stack, zone_id, school_id, "school", schools=[school_id])).status_code == 200
    refused = [
        await school_audit(zone_stack, zone_id, other_id, "school", schools=[school_id]),
        await school_audit(zone_stack, zone_id, school_id, "sis", schools=[school_id]),
    ]
    for response in refused:
        assert_problem(response, 403)
        assert "school.registered" not in response.text


async def test_another_zones_school_trail_is_404_with_nothing_of_it_shown(zone_stack, zone_id):
    school_id = await school_with_history(zone_stack, zone_id)
    response = await school_audit(zone_stack, zone_id, school_id, zone=f"{zone_id}-other")
    assert_problem(response, 404)
    assert "Duggan" not in response.text
    # Nor through the caller's own zone's path.
    assert_problem(await school_audit(zone_stack, f"{zone_id}-other", school_id), 404)


# Plans: their entries are written by the operating plans package; here they are written as it does.


async def plan_with_history(stack: Stack, zone_id: str, school_id: str) -> str:
    plan_id = str(uuid.uuid4())
    async with stack.kits["plans"].engine.begin() as conn:
        await conn.execute(text("INSERT INTO plans.plans (id, zone_id, school_id, school_year) VALUES (:p, :z, :s, '2025-26')"),
                           {"p": plan_id, "z": zone_id, "s": school_id})
    for action, entity, entity_id, after in [
        ("plan.created", "plan", plan_id, {"school_year": "2025-26"}),
        ("plan_version.submitted", "plan_version", str(uuid.uuid4()), {"plan_id": plan_id, "version": 1}),
        ("plan_version.submitted", "plan_version", str(uuid.uuid4()), {"plan_id": str(uuid.uuid4()), "version": 1}),
        ("vote.cast", "vote", str(uuid.uuid4()), {"plan_id": plan_id, "decision": "approve"}),
        ("plan.created", "plan", str(uuid.uuid4()), {"school_year": "2026-27"}),
    ]:
        async with stack.kits["plans"].engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO plans.audit_log (actor, actor_role, zone_id, school_id, action, entity, entity_id, after, trace_id) "
                "VALUES ('ruiz@idp.example', 'school', :z, :s, :a, :e, :id, CAST(:after AS jsonb), :t)"),
                {"z": zone_id, "s": school_id, "a": action, "e": entity, "id": entity_id, "after": json.dumps(after),
                 "t": secrets.token_hex(16)})
    return plan_id


async def plan_audit(stack: Stack, zone_id: str, plan_id: str, role: str = "admin", zone: str | None = None,
                     schools: list[str] | None = None, **params: object):
    return await call(stack, "GET", f"/zones/{zone_id}/plans/{plan_id}/audit", role, zone, schools=schools, params=params)


async def test_a_plans_trail_has_the_plan_its_versions_and_votes_and_nothing_of_other_plans(zone_stack, zone_id):
    school_id = await school_with_history(zone_stack, zone_id)
    plan_id = await plan_with_history(zone_stack, zone_id, school_id)

    response = await plan_audit(zone_stack, zone_id, plan_id, "board")

    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    assert [(e["action"], e["entity"]) for e in entries] == [
        ("vote.cast", "vote"), ("plan_version.submitted", "plan_version"), ("plan.created", "plan")]
    assert entries[2]["entity_id"] == plan_id
    paged = (await plan_audit(zone_stack, zone_id, plan_id, limit=1, before=entries[0]["id"])).json()
    assert paged == {"entries": [entries[1]], "next_before": entries[1]["id"]}


async def test_a_plans_trail_is_for_its_schools_token_and_zone_roles_only(zone_stack, zone_id):
    school_id = await school_with_history(zone_stack, zone_id)
    other_id = (await register_school(zone_stack, zone_id, other_school()))["id"]
    plan_id = await plan_with_history(zone_stack, zone_id, school_id)

    assert (await plan_audit(zone_stack, zone_id, plan_id, "school", schools=[school_id])).status_code == 200
    assert (await plan_audit(zone_stack, zone_id, plan_id, "district")).status_code == 200
    for response, status in [
        (await plan_audit(zone_stack, zone_id, plan_id, "school", schools=[other_id]), 403),
        (await plan_audit(zone_stack, zone_id, plan_id, "sis", schools=[school_id]), 403),
        (await plan_audit(zone_stack, zone_id, plan_id, zone=f"{zone_id}-other"), 404),
        (await plan_audit(zone_stack, f"{zone_id}-other", plan_id), 404),
        (await plan_audit(zone_stack, zone_id, str(uuid.uuid4())), 404),
    ]:
        assert_problem(response, status)
        assert "plan.created" not in response.text
