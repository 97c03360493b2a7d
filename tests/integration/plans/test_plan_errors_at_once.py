"""A plan body with errors of every kind is answered once: the shape's errors (a value of the wrong type, a lever
left out) and the zone's rules that can still be checked (the budget's sum, the goals' ranges, goal ids) in one 422,
and nothing stored."""

from __future__ import annotations

import uuid

from tests.helpers import scalar
from tests.integration.plans.plan_helpers import assert_invalid, plan_body, plan_school
from tests.integration.plans.support import footprint


def _every_kind_of_error(content: dict) -> None:
    content["goals"][0]["annual_target"] = "abc"  # the shape's: not a number
    content["goals"][1]["goal_id"] = str(uuid.uuid4())  # the plan's: not one of its goals
    content["levers"]["budget"]["total"] = "7000000.00"  # the budget's: its line items add up to 7,045,000


async def test_a_put_with_a_type_error_a_budget_over_its_total_and_a_foreign_goal_id_lists_all_three(
        zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    created = await school.create()
    content = created.json()["open_version"]["content"]  # as read, with its goal ids
    _every_kind_of_error(content)
    before = await footprint(zone_stack, zone_id)

    errors = assert_invalid(await school.put(content, created.headers["ETag"]),
                            {"goals.0.annual_target", "goals.1.goal_id", "levers.budget.line_items"})

    reasons = {error["field"]: error["reason"] for error in errors}
    assert "number" in reasons["goals.0.annual_target"]
    assert "not the id of a goal of this plan" in reasons["goals.1.goal_id"]
    assert "add up to 7045000" in reasons["levers.budget.line_items"]
    assert await footprint(zone_stack, zone_id) == before
    assert (await school.get()).headers["ETag"] == created.headers["ETag"]


async def test_a_missing_lever_does_not_hide_the_goals_errors_of_a_new_plan(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    body = plan_body()
    body["levers"].pop("schedule")
    body["goals"][0].update(subgroup="asian", annual_target=250.0)
    body["goals"][1]["interim_targets"] = [{"due": "2026-01-31", "target": "high"}]

    assert_invalid(await school.create(body), {
        "levers.schedule", "goals.0.subgroup", "goals.0.annual_target", "goals.1.interim_targets.0.target"})
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.plans WHERE school_id = :s", s=school.school_id) == 0


async def test_a_body_that_is_not_json_is_one_invalid_field_and_a_caller_without_a_token_is_401_first(
        zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    etag = (await school.create()).headers["ETag"]
    url = school.plan()

    not_json = await school.request("PUT", url, {**school.team(), "If-Match": etag, "Content-Type": "application/json"},
                                    content=b'{"levers": ')
    assert not_json.status_code == 422, not_json.text
    [error] = not_json.json()["errors"]
    assert error["code"] == "json_invalid"
    anonymous = await zone_stack.clients["plans"].put(url, content=b'{"levers": ', headers={"If-Match": etag})
    assert anonymous.status_code == 401, anonymous.text
    assert (await school.get()).headers["ETag"] == etag
