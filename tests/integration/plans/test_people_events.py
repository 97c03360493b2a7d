"""The events other services learn people from: board members, school leadership teams and board votes.
Each change is published once with its full state; a repeat that changes nothing and a refused request publish nothing."""

from __future__ import annotations

from datetime import datetime

from ezone_schemas import BoardMemberChanged, Event, PlanApproved, PlanVoteCast, SchoolTeamChanged
from sqlalchemy import text

from tests.events import published_events
from tests.helpers import register_zone, wait_for_count
from tests.integration.plans.plan_helpers import PLANS_TOPIC, execute, plan_school
from tests.integration.plans.support import assert_problem, call
from tests.integration.plans.test_board import OKAFOR, PRINCIPAL, RIVERA, TEACHER, add_leader, add_member, school_in_zone
from tests.stack import Stack


async def published(stack: Stack, zone_id: str, event: type[Event], key: str, count: int, **where: object) -> list[dict]:
    """Every `event` with record key `key` on the plans topic, once everything the zone's requests wrote is published."""
    await wait_for_count(stack, "SELECT count(*) FROM plans.outbox WHERE sent_at IS NULL AND payload->>'zone_id' = :z", 0,
                         z=zone_id)
    return await published_events(stack, PLANS_TOPIC, event.ce_type, key=key, where=where, expected=count, timeout_s=5)


def without_headers(event: dict) -> dict:
    return {field: value for field, value in event.items() if field != "_headers"}


def instant(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


# Board members


async def test_appointing_and_changing_a_member_publishes_their_record_once_per_change(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    member_id = (await add_member(zone_stack, zone_id, RIVERA)).json()["id"]
    assert (await add_member(zone_stack, zone_id, RIVERA)).status_code == 200  # the same member again: no change
    path = f"/zones/{zone_id}/board-members/{member_id}"
    for _ in range(2):  # the repeat changes nothing
        assert (await call(zone_stack, "PATCH", path, json={"seat": 3, "active_to": "2026-06-30"})).status_code == 200

    appointed, changed = await published(zone_stack, zone_id, BoardMemberChanged, zone_id, 2, member_id=member_id)

    assert without_headers(appointed) == {
        "zone_id": zone_id, "member_id": member_id, "subject": RIVERA["subject"], "name": RIVERA["name"], "seat": 1,
        "appointed_by": "state", "active_from": "2024-07-01", "active_to": None, "changed_at": appointed["changed_at"],
    }
    assert without_headers(changed) == {**without_headers(appointed), "seat": 3, "active_to": "2026-06-30",
                                        "changed_at": changed["changed_at"]}
    assert instant(changed["changed_at"]) > instant(appointed["changed_at"])
    assert appointed["_headers"]["ce_source"] == "/ezone/plans"


# Callers who may not make the change, as (role, zone suffix, status): another zone's admin, and roles of this zone.
NOT_THE_BOARDS_ADMIN = [("admin", "-other", 404), ("district", "", 403), ("board", "", 403), ("school", "", 403)]
NOT_ZONE_STAFF = [("admin", "-other", 404), ("board", "", 403), ("school", "", 403)]


async def test_a_board_change_refused_for_its_caller_or_its_content_publishes_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    member_id = (await add_member(zone_stack, zone_id, RIVERA)).json()["id"]
    path = f"/zones/{zone_id}/board-members/{member_id}"

    for role, elsewhere, status in NOT_THE_BOARDS_ADMIN:
        zone = zone_id + elsewhere
        assert_problem(await call(zone_stack, "POST", f"/zones/{zone_id}/board-members", role, zone, schools=["any"],
                                  json=OKAFOR), status)
        assert_problem(await call(zone_stack, "PATCH", path, role, zone, schools=["any"], json={"seat": 3}), status)
    assert_problem(await add_member(zone_stack, zone_id, {**OKAFOR, "seat": 0}), 422)
    assert_problem(await add_member(zone_stack, zone_id, {**OKAFOR, "seat": 8}), 422)  # beyond the policy's board size
    assert_problem(await add_member(zone_stack, zone_id, {**RIVERA, "name": "Ana R."}), 409)
    assert_problem(await add_member(zone_stack, zone_id, {**OKAFOR, "seat": 1}), 409)  # Rivera holds seat 1
    assert_problem(await call(zone_stack, "PATCH", path, json={"active_to": "2024-06-30"}), 422)

    [appointed] = await published(zone_stack, zone_id, BoardMemberChanged, zone_id, 1)
    assert appointed["member_id"] == member_id


# Leadership teams


async def test_every_team_change_publishes_the_whole_team_once(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    principal_id = (await add_leader(zone_stack, zone_id, school_id, PRINCIPAL, "district")).json()["id"]
    teacher_id = (await add_leader(zone_stack, zone_id, school_id, TEACHER)).json()["id"]
    assert (await add_leader(zone_stack, zone_id, school_id, TEACHER)).status_code == 200  # no change
    path = f"/zones/{zone_id}/schools/{school_id}/leadership"
    assert (await call(zone_stack, "PATCH", f"{path}/{teacher_id}", json={"name": "Sam Lee-Park"})).status_code == 200
    for _ in range(2):  # taking someone off twice is one change
        assert (await call(zone_stack, "DELETE", f"{path}/{principal_id}", "district")).status_code == 204

    events = await published(zone_stack, zone_id, SchoolTeamChanged, school_id, 4)

    principal = {"member_id": principal_id, "subject": PRINCIPAL["subject"], "name": PRINCIPAL["name"], "role": "principal",
                 "active": True}
    teacher = {"member_id": teacher_id, "subject": TEACHER["subject"], "name": TEACHER["name"], "role": "teacher_leader",
               "active": True}
    assert [event["members"] for event in events] == [
        [principal],
        [principal, teacher],
        [principal, {**teacher, "name": "Sam Lee-Park"}],
        [{**principal, "active": False}, {**teacher, "name": "Sam Lee-Park"}],
    ]
    assert {(event["zone_id"], event["school_id"]) for event in events} == {(zone_id, school_id)}
    times = [instant(event["changed_at"]) for event in events]
    assert times == sorted(times)


async def test_a_team_change_refused_for_its_caller_or_its_content_publishes_nothing(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    member_id = (await add_leader(zone_stack, zone_id, school_id, PRINCIPAL)).json()["id"]
    path = f"/zones/{zone_id}/schools/{school_id}/leadership"

    for role, elsewhere, status in NOT_ZONE_STAFF:
        zone = zone_id + elsewhere
        assert_problem(await call(zone_stack, "POST", path, role, zone, schools=[school_id], json=TEACHER), status)
        assert_problem(await call(zone_stack, "PATCH", f"{path}/{member_id}", role, zone, schools=[school_id],
                                  json={"name": "X"}), status)
        assert_problem(await call(zone_stack, "DELETE", f"{path}/{member_id}", role, zone, schools=[school_id]), status)
    assert_problem(await add_leader(zone_stack, zone_id, school_id, {**TEACHER, "role": "coach"}), 422)
    assert_problem(await add_leader(zone_stack, zone_id, school_id, {**PRINCIPAL, "subject": "other@idp.example"}), 409)
    assert_problem(await call(zone_stack, "PATCH", f"{path}/{member_id}", json={"term_ends": "2024-05-31"}), 422)

    [added] = await published(zone_stack, zone_id, SchoolTeamChanged, school_id, 1)
    assert [member["member_id"] for member in added["members"]] == [member_id]


# Votes


async def test_casting_and_changing_a_vote_publish_it_each_time_and_before_the_decision(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    plan_id = (await school.created_and_submitted())["id"]
    members = {m["subject"]: m["id"] for m in (await call(zone_stack, "GET", f"/zones/{zone_id}/board-members")).json()}

    first = await school.vote(school.board[0], "return", {"budget": "Too thin."})
    changed = await school.vote(school.board[0], "approve")
    assert (first.status_code, changed.status_code) == (201, 200), changed.text
    for subject in school.board[1:4]:  # the fourth approval decides
        assert (await school.vote(subject, "approve")).status_code == 201

    events = await published(zone_stack, zone_id, PlanVoteCast, school.school_id, 5, plan_id=plan_id)

    assert without_headers(events[0]) == {
        "zone_id": zone_id, "school_id": school.school_id, "plan_id": plan_id, "version": 1,
        "member_id": members[school.board[0]], "subject": school.board[0], "decision": "return",
        "cast_at": first.json()["vote"]["cast_at"],
    }
    assert (events[1]["decision"], events[1]["cast_at"]) == ("approve", changed.json()["vote"]["changed_at"])
    assert [(e["subject"], e["decision"]) for e in events[1:]] == [(subject, "approve") for subject in school.board[:4]]
    async with zone_stack.kits["plans"].engine.connect() as conn:
        order = (await conn.execute(text("SELECT ce_type FROM plans.outbox WHERE key = :k ORDER BY seq"),
                                    {"k": school.school_id})).scalars().all()
    assert order[-2:] == [PlanVoteCast.ce_type, PlanApproved.ce_type]


async def test_a_refused_vote_publishes_nothing(zone_stack, zone_id):
    school = await plan_school(zone_stack, zone_id)
    assert (await school.create()).status_code == 201
    assert_problem(await school.vote(school.board[0], "approve"), 409)  # a draft is not put to the board yet
    await school.submit()
    await execute(zone_stack, "UPDATE plans.board_members SET active_to = current_date - 1 WHERE zone_id = :z AND seat = 7",
                  z=zone_id)

    for subject in ("someone-else", school.board[6]):  # not a member; no longer seated
        assert_problem(await school.vote(subject, "approve"), 403)
    for role in ("school", "district", "admin"):
        schools = [school.school_id] if role == "school" else None
        assert_problem(await school.vote("", "approve", headers=zone_stack.auth(role, zone_id, schools)), 403)
    assert_problem(await school.vote(school.board[0], "abstain"), 422)
    assert_problem(await school.request("POST", f"{school.plans}/2030-31/votes", school.member(school.board[0]),
                                        json={"decision": "approve"}), 404)

    assert await published(zone_stack, zone_id, PlanVoteCast, school.school_id, 0) == []
