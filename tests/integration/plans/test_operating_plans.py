"""Operating plans over HTTP on the real stack: lifecycle, versions, ETags, validation, access, earned autonomy."""

from __future__ import annotations

import copy
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from ezone_schemas import PlanApproved, PlanSubmitted

from tests.events import published_events
from tests.helpers import scalar
from tests.integration.plans.plan_helpers import PLANS_TOPIC, YEAR, assert_invalid, content_of, plan_body, plan_school
from tests.integration.plans.support import assert_problem, footprint
from tests.integration.test_registry_api import assert_one_created_and_the_rest_found, sent_at_once


async def test_plan_lives_from_draft_to_approval_and_an_amendment_supersedes_it(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)

    created = await school.create()
    assert created.status_code == 201, created.text
    plan = created.json()
    plan_id = plan["id"]
    assert created.headers["Location"] == school.plan(YEAR)
    assert (plan["status"], plan["open_version"]["version"], plan["open_version"]["revision"]) == ("draft", 1, 1)
    assert plan["approved_version"] is None
    assert created.headers["ETag"] == plan["open_version"]["etag"]
    goal_ids = [goal["goal_id"] for goal in plan["open_version"]["content"]["goals"]]

    edited_body = plan_body()
    edited_body["levers"]["culture"]["narrative"] = "Restorative practices and advisories."
    edited = await school.put(content_of(edited_body), created.headers["ETag"])
    assert edited.status_code == 200, edited.text
    assert edited.json()["open_version"]["revision"] == 2
    assert edited.headers["ETag"] != created.headers["ETag"]
    assert [goal["goal_id"] for goal in edited.json()["open_version"]["content"]["goals"]] == goal_ids

    submitted = await school.submit(edited.headers["ETag"])
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    [event] = await published_events(zone_stack, PLANS_TOPIC, PlanSubmitted.ce_type, key=school.school_id,
                                     where={"plan_id": plan_id})
    assert (event["version"], event["amendment"], event["school_year"], event["submitted_by"]) == (1, False, YEAR, "dev-school")

    decided = await school.board_votes("approve", "approve", "approve", "approve")
    assert decided[-1].json()["status"] == "approved"
    approved = (await school.get()).json()
    assert (approved["status"], approved["open_version"], approved["approved_version"]["version"]) == ("approved", None, 1)

    # Amendment: a new draft copied from the approved version, which holds until the amendment is approved.
    amendment = await school.amend()
    assert amendment.status_code == 201, amendment.text
    view = amendment.json()
    assert (view["status"], view["open_version"]["version"], view["open_version"]["amendment"]) == ("draft", 2, True)
    assert view["approved_version"]["version"] == 1
    assert view["open_version"]["content"] == approved["approved_version"]["content"]

    amended_body = plan_body(total="9500000.00")
    amended_body["goals"][1]["annual_target"] = 55.0
    amended_body["goals"].append({"metric": "participation_rate", "subject": "MATH", "subgroup": "all_students",
                                  "baseline": 97.0, "annual_target": 98.0})
    edited = await school.put(content_of(amended_body), amendment.headers["ETag"])
    assert edited.status_code == 200, edited.text
    new_goal_ids = [goal["goal_id"] for goal in edited.json()["open_version"]["content"]["goals"]]
    assert new_goal_ids[:2] == goal_ids  # the same metric, subject and subgroup keep their ids across versions
    assert new_goal_ids[2] not in goal_ids

    assert (await school.submit()).status_code == 200
    await school.board_votes("approve", "approve", "approve", "approve")
    final = (await school.get()).json()
    assert (final["status"], final["approved_version"]["version"], final["open_version"]) == ("approved", 2, None)
    statuses = await scalar(zone_stack, "SELECT string_agg(status, ',' ORDER BY version) FROM plans.plan_versions "
                                        "WHERE plan_id = :p", p=plan_id)
    assert statuses == "superseded,approved"

    events = await published_events(zone_stack, PLANS_TOPIC, PlanApproved.ce_type, key=school.school_id,
                                    where={"plan_id": plan_id}, expected=2)
    assert sorted(e["version"] for e in events) == [1, 2]
    latest = next(e for e in events if e["version"] == 2)
    assert [goal["goal_id"] for goal in latest["goals"]] == new_goal_ids
    assert latest["goals"][1] == {"goal_id": goal_ids[1], "metric": "median_growth_percentile", "subject": "ELA",
                                  "subgroup": "high_needs", "baseline": 41.0, "annual_target": 55.0, "interim_targets": []}
    assert latest["goals"][0]["interim_targets"] == [{"due": "2026-01-31", "target": 31.0}]
    budget = latest["budget"]
    assert (Decimal(budget["total"]), Decimal(budget["per_pupil_allocation"]), Decimal(budget["purchased_services_total"])) == (
        Decimal("9500000"), Decimal("9500"), Decimal("45000"))
    assert [(s["provider"], Decimal(s["amount"])) for s in budget["planned_services"]] == [("district", Decimal("45000"))]
    assert (latest["approvals"], latest["returns"], latest["automatic"]) == (4, 0, False)

    for action, count in {"plan.created": 1, "plan.edited": 2, "plan.submitted": 2, "plan.amended": 1,
                          "plan.approved": 2, "vote.cast": 8}.items():
        assert len(await school.audit(plan_id, action)) == count, action
    [superseding] = [e for e in await school.audit(plan_id, "plan.approved") if e["after"]["version"] == 2]
    assert superseding["after"]["superseded_version"] == 1
    edit = (await school.audit(plan_id, "plan.edited"))[0]
    assert edit["before"]["revision"] == 1 and edit["after"]["revision"] == 2
    assert edit["after"]["content"]["levers"]["culture"]["narrative"] == "Restorative practices and advisories."
    assert edit["actor_role"] == "school" and edit["school_id"] == school.school_id and edit["trace_id"]


async def test_plans_are_listed_by_school_year_and_readable_by_the_zones_roles(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    for year in ("2025-26", "2026-27"):
        body = plan_body(year)
        body["goals"][0]["interim_targets"] = []
        assert (await school.create(body)).status_code == 201

    listed = await school.request("GET", school.plans)
    assert listed.status_code == 200, listed.text
    assert [plan["school_year"] for plan in listed.json()] == ["2026-27", "2025-26"]
    for role in ("board", "district", "admin"):
        response = await school.get(headers=zone_stack.auth(role, zone_id))
        assert response.status_code == 200, (role, response.text)
        assert response.headers["ETag"] == '"1.1"'
    assert_problem(await school.get(headers=zone_stack.auth("sis", zone_id, [school.school_id])), 403)
    assert_problem(await school.get("2027-28"), 404)


async def test_another_schools_team_can_neither_read_nor_change_the_plan(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    etag = (await school.create()).headers["ETag"]
    other_team = zone_stack.auth("school", zone_id, [str(uuid.uuid4())])
    before = await footprint(zone_stack, zone_id)

    assert_problem(await school.get(headers=other_team), 403)
    assert_problem(await school.request("PUT", school.plan(), {**other_team, "If-Match": etag}, json=content_of(plan_body())), 403)
    assert_problem(await school.request("POST", f"{school.plan()}/submit", {**other_team, "If-Match": etag}), 403)
    assert_problem(await school.request("POST", school.plans, other_team, json=plan_body("2026-27")), 403)
    assert await footprint(zone_stack, zone_id) == before
    # Only the school's own team writes its plan, not the zone's staff.
    assert_problem(await school.request("POST", school.plans, zone_stack.auth("admin", zone_id), json=plan_body("2026-27")), 403)


async def test_another_zone_sees_no_plan_and_changes_nothing(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    created = await school.create()
    etag, plan_id = created.headers["ETag"], created.json()["id"]
    before = await footprint(zone_stack, zone_id)
    elsewhere = f"{zone_id}-x"

    for role in ("board", "admin", "district"):
        response = await school.get(headers=zone_stack.auth(role, elsewhere))
        assert assert_problem(response, 404)["detail"] == f"Zone {zone_id!r} was not found."
        assert plan_id not in response.text and "ETag" not in response.headers
    outsider = zone_stack.auth("school", elsewhere, [school.school_id])
    assert_problem(await school.request("PUT", school.plan(), {**outsider, "If-Match": etag}, json=content_of(plan_body())), 404)
    assert_problem(await school.request("POST", f"{school.plan()}/votes",
                                        {"Authorization": f"Bearer {zone_stack.token('board', elsewhere, subject=school.board[0])}"},
                                        json={"decision": "approve"}), 404)
    assert_problem(await school.request("GET", f"/zones/{zone_id}/plans", zone_stack.auth("board", elsewhere)), 404)
    assert await footprint(zone_stack, zone_id) == before


async def test_a_write_without_if_match_is_428_and_with_a_stale_etag_412_and_changes_nothing(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    first = (await school.create()).headers["ETag"]
    assert (await school.put(content_of(plan_body()), first)).status_code == 200
    plan = (await school.get()).json()

    assert_problem(await school.put(content_of(plan_body()), None), 428)
    stale = assert_problem(await school.put(content_of(plan_body()), first), 412)
    assert stale["etag"] == '"1.2"'
    assert_problem(await school.request("POST", f"{school.plan()}/submit"), 428)
    assert_problem(await school.submit(first), 412)
    assert (await school.get()).json() == plan
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.outbox WHERE payload->>'plan_id' = :p", p=plan["id"]) == 0


def _goal(body: dict, n: int = 0) -> dict:
    return body["goals"][n]


def _invalid(change) -> dict:
    body = plan_body()
    change(body)
    return body


INVALID_PLANS = {
    "unknown metric": (lambda b: _goal(b).update(metric="happiness_index"), {"goals.0.metric"}),
    "target out of range": (lambda b: _goal(b).update(annual_target=101.0), {"goals.0.annual_target"}),
    "baseline out of range": (lambda b: _goal(b, 1).update(baseline=0.0), {"goals.1.baseline"}),
    "interim target out of range": (lambda b: _goal(b)["interim_targets"][0].update(target=-1), {"goals.0.interim_targets.0.target"}),
    "untracked subgroup": (lambda b: _goal(b).update(subgroup="white"), {"goals.0.subgroup"}),
    "interim date outside the year": (lambda b: _goal(b)["interim_targets"][0].update(due="2026-09-01"),
                                      {"goals.0.interim_targets.0.due"}),
    "duplicate goal": (lambda b: b["goals"].append(copy.deepcopy(_goal(b))), {"goals.2"}),
    "no goals": (lambda b: b.update(goals=[]), {"goals"}),
    "budget over total": (lambda b: b["levers"]["budget"].update(total="7000000.00"), {"levers.budget.line_items"}),
    "partner without partner_id": (lambda b: b["levers"]["budget"]["line_items"].append(
        {"description": "Coaching", "amount": "1000", "category": "services", "provider": "partner"}),
        {"levers.budget.line_items.2.partner_id"}),
    "non-positive amount": (lambda b: b["levers"]["budget"]["line_items"][0].update(amount="0"),
                            {"levers.budget.line_items.0.amount"}),
    "missing lever": (lambda b: b["levers"].pop("schedule"), {"levers.schedule"}),
    "empty narrative": (lambda b: b["levers"]["staffing"].update(narrative=""), {"levers.staffing.narrative"}),
    "too many decisions": (lambda b: b["levers"]["culture"].update(decisions=[{"title": f"d{i}"} for i in range(51)]),
                           {"levers.culture.decisions"}),
    "unknown category": (lambda b: b["levers"]["budget"]["line_items"][0].update(category="travel"),
                         {"levers.budget.line_items.0.category"}),
    "school year not consecutive": (lambda b: b.update(school_year="2025-27"), {"school_year"}),
    "school year malformed": (lambda b: b.update(school_year="2025/26"), {"school_year"}),
}


@pytest.mark.parametrize("case", INVALID_PLANS, ids=list(INVALID_PLANS))
async def test_an_invalid_plan_is_422_naming_the_field_and_stores_nothing(zone_stack, zone_id, case):
    change, fields = INVALID_PLANS[case]
    school = await plan_school(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    assert_invalid(await school.create(_invalid(change)), fields)
    assert await footprint(zone_stack, zone_id) == before
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.plans WHERE school_id = :s", s=school.school_id) == 0


async def test_the_zones_rules_list_every_problem_at_once_and_name_what_the_zone_tracks(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)

    def break_everything(body: dict) -> None:
        _goal(body).update(subgroup="asian", annual_target=250.0)
        _goal(body)["interim_targets"].append({"due": "2025-08-31", "target": 30.0})
        body["goals"].append(copy.deepcopy(_goal(body, 1)))

    every_problem = {"goals.0.subgroup", "goals.0.annual_target", "goals.0.interim_targets.1.due", "goals.2"}
    errors = {e["field"]: e["reason"] for e in assert_invalid(await school.create(_invalid(break_everything)), every_problem)}
    assert "all_students, high_needs, el, swd, low_income, afr_american_black, hispanic_latino" in errors["goals.0.subgroup"]
    assert "between 0 and 100" in errors["goals.0.annual_target"]
    assert "2025-09-01 to 2026-08-31" in errors["goals.0.interim_targets.1.due"]

    # The same checks guard the PUT.
    etag = (await school.create()).headers["ETag"]
    assert_invalid(await school.put(content_of(_invalid(break_everything)), etag), every_problem)
    assert (await school.get()).headers["ETag"] == etag


async def test_line_items_over_the_budget_total_do_not_hide_the_goals_errors(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)

    def over_budget_and_wrong_goals(body: dict) -> None:
        body["levers"]["budget"]["total"] = "7000000.00"  # the line items add up to 7,045,000
        _goal(body).update(subgroup="asian", annual_target=250.0)
        _goal(body, 1).update(baseline=0.0)

    expected = {"levers.budget.line_items", "goals.0.subgroup", "goals.0.annual_target", "goals.1.baseline"}
    assert_invalid(await school.create(_invalid(over_budget_and_wrong_goals)), expected)
    etag = (await school.create()).headers["ETag"]
    assert_invalid(await school.put(content_of(_invalid(over_budget_and_wrong_goals)), etag), expected)


async def test_goals_written_back_with_their_ids_keep_them_and_an_id_of_another_goal_is_refused(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    created = await school.create()
    content = created.json()["open_version"]["content"]
    ids = [goal["goal_id"] for goal in content["goals"]]

    content["goals"][0]["annual_target"] = 36.0
    edited = await school.put(content, created.headers["ETag"])
    assert edited.status_code == 200, edited.text
    assert [goal["goal_id"] for goal in edited.json()["open_version"]["content"]["goals"]] == ids

    content["goals"][0]["subgroup"] = "high_needs"  # another goal now, under the first one's id
    content["goals"][1]["goal_id"] = str(uuid.uuid4())
    [moved, unknown] = assert_invalid(await school.put(content, edited.headers["ETag"]),
                                      {"goals.0.goal_id", "goals.1.goal_id"})
    assert "proficiency_rate/MATH/all_students" in moved["reason"] and "leave goal_id out" in moved["reason"]
    assert "not the id of a goal of this plan" in unknown["reason"]


async def test_the_same_create_twice_with_one_idempotency_key_makes_one_plan(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = await school.create(plan_body(), **key)
    again = await school.create(plan_body(), **key)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    plan_id = first.json()["id"]
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.plan_versions WHERE plan_id = :p", p=plan_id) == 1
    assert len(await school.audit(plan_id, "plan.created")) == 1

    for headers in ({}, {"Idempotency-Key": str(uuid.uuid4())}):
        conflict = assert_problem(await school.create(plan_body(), **headers), 409)
        assert conflict["plan_id"] == plan_id and plan_id in conflict["detail"]
    # The same key with another body is a client bug (IETF Idempotency-Key draft: 422), not a second plan.
    reused = assert_problem(await school.create(plan_body(total="9400000.00"), **key), 422)
    assert reused["type"].endswith("idempotency-key-reused") and "different request" in reused["detail"]
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.plans WHERE school_id = :s", s=school.school_id) == 1


async def test_the_same_create_sent_twice_at_once_with_one_idempotency_key_makes_one_plan_and_both_succeed(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    key = str(uuid.uuid4())
    responses = await sent_at_once(zone_stack, "plans.plans", [school.create(plan_body(), **{"Idempotency-Key": key})
                                                               for _ in range(2)])

    assert_one_created_and_the_rest_found(responses)
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.plan_versions v JOIN plans.plans p ON p.id = v.plan_id "
                                    "WHERE p.school_id = :s", s=school.school_id) == 1


async def test_transitions_out_of_turn_are_409_and_change_nothing(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    created = await school.create()
    plan_id = created.json()["id"]

    body = assert_problem(await school.amend(), 409)
    assert "approved" in body["detail"]

    assert (await school.submit()).status_code == 200
    etag = await school.etag()
    second = assert_problem(await school.submit(etag), 409)
    assert second["plan_status"] == "submitted"
    assert_problem(await school.put(content_of(plan_body()), etag), 409)
    assert_problem(await school.amend(), 409)

    assert await school.outbox(PlanSubmitted.ce_type, plan_id) == 1
    assert len(await school.audit(plan_id, "plan.submitted")) == 1
    events = await published_events(zone_stack, PLANS_TOPIC, PlanSubmitted.ce_type, key=school.school_id,
                                    where={"plan_id": plan_id}, timeout_s=5)
    assert len(events) == 1

    await school.board_votes("approve", "approve", "approve", "approve")
    assert_problem(await school.submit(), 409)  # nothing open: amend first
    assert_problem(await school.put(content_of(plan_body()), await school.etag()), 409)
    assert (await school.amend()).status_code == 201
    assert_problem(await school.amend(), 409)  # one amendment at a time


async def test_a_full_tier_schools_small_amendment_is_approved_on_submission(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    plan_id = (await school.created_and_submitted())["id"]
    await school.board_votes("approve", "approve", "approve", "approve")
    await school.set_tier("full")

    # Below the default threshold (25,000): approved at once, no vote.
    amendment = await school.amend()
    assert (await school.put(content_of(plan_body(total="9320000.00")), amendment.headers["ETag"])).status_code == 200
    submitted = await school.submit()
    assert submitted.status_code == 200, submitted.text
    view = submitted.json()
    assert (view["status"], view["open_version"], view["approved_version"]["version"]) == ("approved", None, 2)
    assert view["approved_version"]["automatic"] is True
    assert submitted.headers["ETag"] == '"2.2"'
    [event] = await published_events(zone_stack, PLANS_TOPIC, PlanApproved.ce_type, key=school.school_id,
                                     where={"plan_id": plan_id, "version": 2})
    assert (event["automatic"], event["approvals"], event["returns"]) == (True, 0, 0)
    assert Decimal(event["budget"]["total"]) == Decimal("9320000")
    [entry] = [e for e in await school.audit(plan_id, "plan.approved") if e["after"]["version"] == 2]
    assert entry["after"]["automatic"] is True and entry["after"]["superseded_version"] == 1

    # At the threshold or above: the board decides.
    amendment = await school.amend()
    assert (await school.put(content_of(plan_body(total="9345000.00")), amendment.headers["ETag"])).status_code == 200
    assert (await school.submit()).json()["status"] == "submitted"


async def test_a_standard_schools_amendment_and_a_full_schools_first_version_go_to_the_board(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    await school.set_tier("full")
    assert (await school.created_and_submitted())["status"] == "submitted"
    await school.board_votes("approve", "approve", "approve", "approve")
    await school.set_tier("standard")
    await school.amend()
    assert (await school.submit()).json()["status"] == "submitted"


async def test_an_intensive_support_school_must_buy_from_a_vetted_partner(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    await school.set_tier("intensive_support")
    not_vetted = await school.add_partner(status="provisional")
    expired = await school.add_partner(expires_on=date.today() - timedelta(days=1))
    other_zones = await school.add_partner(zone_id=f"{zone_id}-other")
    vetted = await school.add_partner(expires_on=date.today() + timedelta(days=30))

    def with_partner(partner_id: str) -> dict:
        body = plan_body()
        body["levers"]["budget"]["line_items"].append(
            {"description": "Math coaching", "amount": "80000", "category": "services", "provider": "partner",
             "partner_id": partner_id})
        return content_of(body)

    created = await school.create()
    plan_id = created.json()["id"]
    # A draft may be incomplete: the rule is checked on submission.
    [error] = assert_invalid(await school.submit(created.headers["ETag"]), {"levers.budget.line_items"}, root="plan")
    assert "vetted partner" in error["reason"]
    for partner_id in (not_vetted, expired, other_zones):
        assert (await school.put(with_partner(partner_id), await school.etag())).status_code == 200
        assert_invalid(await school.submit(), {"levers.budget.line_items"}, root="plan")
    assert await school.outbox(PlanSubmitted.ce_type, plan_id) == 0

    assert (await school.put(with_partner(vetted), await school.etag())).status_code == 200
    submitted = await school.submit()
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"

