"""The board's decision on the real stack: who may vote, how votes count, and that a plan is decided exactly once."""

from __future__ import annotations

import asyncio

from ezone_schemas import PlanApproved, PlanReturned

from tests.events import published_events
from tests.helpers import scalar
from tests.integration.plans.plan_helpers import PLANS_TOPIC, content_of, execute, plan_body, plan_school
from tests.integration.plans.support import assert_problem, footprint


async def test_a_split_board_decides_when_a_majority_of_the_seated_members_agree(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    plan_id = (await school.created_and_submitted())["id"]

    votes = await school.board_votes("approve", "approve", "approve", "return", "return", "return")
    assert [v.json()["status"] for v in votes] == ["submitted"] * 6  # 3 to 3: no side has 4 of the 7 seats
    assert votes[-1].json()["votes"] == {"approvals": 3, "returns": 3}
    assert await school.outbox(PlanApproved.ce_type, plan_id) == 0

    deciding = await school.vote(school.board[6], "approve")
    assert deciding.status_code == 201, deciding.text
    assert (deciding.json()["status"], deciding.json()["votes"]) == ("approved", {"approvals": 4, "returns": 3})
    [event] = await published_events(zone_stack, PLANS_TOPIC, PlanApproved.ce_type, key=school.school_id,
                                     where={"plan_id": plan_id})
    assert (event["approvals"], event["returns"], event["version"], event["automatic"]) == (4, 3, 1, False)
    assert [entry["actor"] for entry in await school.audit(plan_id, "plan.approved")] == [school.board[6]]
    assert_problem(await school.vote(school.board[0], "return"), 409)  # decided: the vote is closed


async def test_a_returned_plan_carries_every_members_comments_and_is_reworked_and_resubmitted(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    plan_id = (await school.created_and_submitted())["id"]
    comments = {
        school.board[0]: {"budget": "Show how the coaches are paid after year one.", "staffing": "Who hires them?"},
        school.board[1]: {"schedule": "The longer day needs the union's agreement."},
        school.board[2]: {},
        school.board[3]: {"curriculum": "Good choice."},
    }
    decisions = {school.board[3]: "approve"}
    for subject, lever_comments in comments.items():
        response = await school.vote(subject, decisions.get(subject, "return"), lever_comments)
        assert response.status_code == 201, response.text
    assert_problem(await school.votes(headers=school.team()), 403)  # not while the board decides
    assert (await school.vote(school.board[4], "return")).json()["status"] == "returned"

    [event] = await published_events(zone_stack, PLANS_TOPIC, PlanReturned.ce_type, key=school.school_id,
                                     where={"plan_id": plan_id})
    members = {m["subject"]: m for m in (await school.request(
        "GET", f"/zones/{zone_id}/board-members", zone_stack.auth("admin", zone_id))).json()}
    assert (event["approvals"], event["returns"], event["version"]) == (1, 4, 1)
    assert [(c["member_name"], c["lever"], c["comment"]) for c in event["comments"]] == [
        ("Member 1", "staffing", "Who hires them?"),
        ("Member 1", "budget", "Show how the coaches are paid after year one."),
        ("Member 2", "schedule", "The longer day needs the union's agreement."),
        ("Member 4", "curriculum", "Good choice."),
    ]
    assert event["comments"][0]["member_id"] == members[school.board[0]]["id"]

    # Once decided, the school sees the votes, and reworks the returned version.
    seen = await school.votes(headers=school.team())
    assert seen.status_code == 200, seen.text
    assert [(v["seat"], v["decision"]) for v in seen.json()] == [(1, "return"), (2, "return"), (3, "return"), (4, "approve"),
                                                               (5, "return")]
    assert seen.json()[0]["comments"] == comments[school.board[0]]
    returned = (await school.get()).json()
    assert (returned["status"], returned["open_version"]["votes"]) == ("returned", {"approvals": 1, "returns": 4})
    edited = await school.put(content_of(plan_body(total="9400000.00")), await school.etag())
    assert edited.status_code == 200, edited.text
    assert edited.json()["status"] == "returned"

    resubmitted = await school.submit()
    assert resubmitted.json()["status"] == "submitted"
    # A new round: the last round's votes no longer count (they stay in the audit log and in plan.returned).
    assert resubmitted.json()["open_version"]["votes"] is None  # the school does not watch the vote
    as_board = (await school.get(headers=school.member(school.board[0]))).json()
    assert as_board["open_version"]["votes"] == {"approvals": 0, "returns": 0}
    assert (await school.votes()).json() == []
    await school.board_votes("approve", "approve", "approve", "approve")
    assert (await school.get()).json()["approved_version"]["version"] == 1


async def test_a_second_vote_by_a_member_replaces_the_first_is_audited_and_counts_once(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    plan_id = (await school.created_and_submitted())["id"]
    member = school.board[0]

    first = await school.vote(member, "return", {"budget": "Too thin."})
    assert first.status_code == 201, first.text
    assert first.json()["vote"]["changed_at"] is None
    changed = await school.vote(member, "approve", {"budget": "Fine after the call."})
    assert changed.status_code == 200, changed.text
    vote = changed.json()["vote"]
    assert (vote["decision"], vote["comments"], vote["cast_at"]) == ("approve", {"budget": "Fine after the call."},
                                                                     first.json()["vote"]["cast_at"])
    assert vote["changed_at"] is not None
    assert changed.json()["votes"] == {"approvals": 1, "returns": 0}
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.votes v JOIN plans.plan_versions pv ON pv.id = v.plan_version_id "
                                    "WHERE pv.plan_id = :p", p=plan_id) == 1

    [cast] = await school.audit(plan_id, "vote.cast")
    [entry] = await school.audit(plan_id, "vote.changed")
    assert (cast["actor"], cast["actor_role"], cast["before"]) == (member, "board", None)
    assert entry["before"]["decision"] == "return" and entry["before"]["comments"] == {"budget": "Too thin."}
    assert entry["after"]["decision"] == "approve" and entry["after"]["comments"] == {"budget": "Fine after the call."}
    assert entry["trace_id"]

    # Three more approvals make four: the changed vote counted once, as an approval.
    decided = [await school.vote(subject, "approve") for subject in school.board[1:4]]
    assert [v.status_code for v in decided] == [201, 201, 201]
    assert (decided[-1].json()["status"], decided[-1].json()["votes"]) == ("approved", {"approvals": 4, "returns": 0})


async def test_only_seated_board_members_vote(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    plan_id = (await school.created_and_submitted())["id"]
    # Seat 7's term ended yesterday: no longer seated.
    await execute(zone_stack, "UPDATE plans.board_members SET active_to = current_date - 1 WHERE zone_id = :z AND seat = 7",
                  z=zone_id)
    before = await footprint(zone_stack, zone_id)

    for subject in ("dev-board", "someone-else", school.board[6]):
        refused = assert_problem(await school.vote(subject, "approve"), 403)
        assert "not a seated board member" in refused["detail"]
    for role in ("school", "district", "admin"):
        schools = [school.school_id] if role == "school" else None
        assert_problem(await school.vote("", "approve", headers=zone_stack.auth(role, zone_id, schools)), 403)
    assert await footprint(zone_stack, zone_id) == before
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.votes v JOIN plans.plan_versions pv ON pv.id = v.plan_version_id "
                                    "WHERE pv.plan_id = :p", p=plan_id) == 0


async def test_votes_are_taken_only_on_a_submitted_version(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    created = await school.create()
    refused = assert_problem(await school.vote(school.board[0], "approve"), 409)
    assert refused["plan_status"] == "draft" and "submitted" in refused["detail"]
    assert len(await school.audit(created.json()["id"], "vote.cast")) == 0
    assert_problem(await school.request("POST", f"{school.plans}/2030-31/votes", school.member(school.board[0]),
                                        json={"decision": "approve"}), 404)
    invalid = await school.request("POST", f"{school.plan()}/votes", school.member(school.board[0]),
                                   json={"decision": "abstain", "comments": {"recess": "x"}})
    assert {e["field"] for e in assert_problem(invalid, 422)["errors"]} == {"decision", "comments.recess.[key]"}


async def test_parallel_final_votes_decide_the_plan_exactly_once(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    plan_id = (await school.created_and_submitted())["id"]
    await school.board_votes("approve", "approve", "approve")

    # Four members cast the deciding vote at the same moment: the version lock lets one decide, the rest find it decided.
    responses = await asyncio.gather(*(school.vote(subject, "approve") for subject in school.board[3:]))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409], [r.text for r in responses]
    assert [r.json()["status"] for r in responses if r.status_code == 201] == ["approved"]

    assert await school.outbox(PlanApproved.ce_type, plan_id) == 1
    assert len(await school.audit(plan_id, "plan.approved")) == 1
    assert len(await school.audit(plan_id, "vote.cast")) == 4
    events = await published_events(zone_stack, PLANS_TOPIC, PlanApproved.ce_type, key=school.school_id,
                                    where={"plan_id": plan_id}, timeout_s=5)
    assert len(events) == 1
    assert (events[0]["approvals"], events[0]["returns"]) == (4, 0)


async def test_parallel_split_decisions_still_decide_once(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    plan_id = (await school.created_and_submitted())["id"]
    await school.board_votes("approve", "approve", "approve", "return", "return", "return")

    # The last member and a member changing their vote at once: whichever comes first decides; the other finds it decided.
    responses = await asyncio.gather(school.vote(school.board[6], "return"), school.vote(school.board[0], "return"))
    assert sorted(r.status_code for r in responses) in ([200, 409], [201, 409]), [r.text for r in responses]
    decided = await scalar(zone_stack, "SELECT count(*) FROM plans.outbox WHERE payload->>'plan_id' = :p AND ce_type IN (:a, :r)",
                           p=plan_id, a=PlanApproved.ce_type, r=PlanReturned.ce_type)
    assert decided == 1


async def test_a_zone_that_counts_votes_cast_decides_on_a_majority_of_them(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    admin = zone_stack.auth("admin", zone_id)
    policy = await school.request("GET", f"/zones/{zone_id}/policy", admin)
    document = policy.json()["document"] | {"voting": {"board_size": 7, "quorum": 3, "majority": "of_votes_cast"}}
    adopted = await school.request("PUT", f"/zones/{zone_id}/policy", {**admin, "If-Match": policy.headers["ETag"]}, json=document)
    assert adopted.status_code == 201, adopted.text
    await school.created_and_submitted()

    votes = await school.board_votes("approve", "return", "approve")
    assert [v.json()["status"] for v in votes] == ["submitted", "submitted", "approved"]


async def test_the_boards_queue_lists_submitted_plans_with_the_members_own_vote(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    await school.created_and_submitted()
    body = plan_body("2026-27")
    body["goals"][0]["interim_targets"] = []
    assert (await school.create(body)).status_code == 201  # a draft: not in the queue
    assert (await school.vote(school.board[0], "return", {"culture": "More detail."})).status_code == 201

    def queue(headers: dict[str, str], **params: str):
        return school.request("GET", f"/zones/{zone_id}/plans", headers, params=params)

    mine = await queue(school.member(school.board[0]))
    assert mine.status_code == 200, mine.text
    [item] = mine.json()
    assert (item["school_id"], item["school_year"], item["version"], item["status"]) == (school.school_id, "2025-26", 1, "submitted")
    assert item["votes"] == {"approvals": 0, "returns": 1}
    assert (item["my_vote"]["decision"], item["my_vote"]["comments"]) == ("return", {"culture": "More detail."})
    [other] = (await queue(school.member(school.board[1]))).json()
    assert other["my_vote"] is None
    drafts = (await queue(zone_stack.auth("district", zone_id), status="draft")).json()
    assert [d["school_year"] for d in drafts] == ["2026-27"]
    assert_problem(await queue(school.team()), 403)
