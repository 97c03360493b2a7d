"""The board page's data and sign-in on the real stack: projections fed by the plans and results services' events,
the overview API, and the session cookie the page signs in with."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from ezone.stack import wait_for
from ezone_notifications.session import BOARD_COOKIE
from ezone_schemas import PlanReturned, PlanSubmitted, PlanVoteCast, ReviewCompleted
from ezone_schemas.results import GoalFinding, IntegrityFlag, StatusReason, SubgroupMetrics
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject

from tests.events import publish_as
from tests.helpers import DUGGAN_NAME, scalar
from tests.integration.plans.plan_helpers import YEAR, PlanSchool, plan_school
from tests.integration.test_registry_api import assert_problem
from tests.stack import Stack

from .support import PLANS_SOURCE, RESULTS_SOURCE, member_auth, sql, wait_for_sql

MATH_GOAL = 34.0  # plan_body()'s all-students math proficiency target
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def notifications(zone_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The shared client, whose cookie jar must not carry a board session into other tests."""
    client = zone_stack.clients["notifications"]
    client.cookies.clear()
    yield client
    client.cookies.clear()


async def board_school(stack: Stack, zone_id: str) -> PlanSchool:
    """A zone with one school and a seated board of seven, through the plans API, once notifications knows the school."""
    school = await plan_school(stack, zone_id)
    await wait_for_sql(stack, "SELECT count(*) FROM notifications.schools WHERE zone_id = :z", 1, z=zone_id)
    return school


async def overview_when(stack: Stack, zone_id: str, headers: dict[str, str], reached: Callable[[dict], bool],
                        what: str) -> dict:
    """The overview once `reached` holds for it (the projections follow the events asynchronously)."""
    async def current() -> dict | None:
        response = await stack.clients["notifications"].get(f"/zones/{zone_id}/board/overview", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return body if reached(body) else None

    return await wait_for(current, 20.0, interval_s=0.1, what=what)


def review_event(zone_id: str, school_id: str, *, subject: Subject = Subject.MATH, school_year: str = YEAR,
                 version: int = 1, status: ReviewStatus = ReviewStatus.MEETING, proficiency: float | None = 40.0,
                 participation: float = 97.0, flags: list[IntegrityFlag] | None = None) -> ReviewCompleted:
    everyone = SubgroupMetrics(subgroup=Subgroup.ALL_STUDENTS, n_tested=4 if proficiency is None else 120,
                               suppressed=proficiency is None, proficiency_rate=proficiency,
                               participation_rate=None if proficiency is None else participation)
    return ReviewCompleted(
        review_id=uuid.uuid4(), zone_id=zone_id, school_id=uuid.UUID(school_id), school_year=school_year, subject=subject,
        version=version, status=status, metrics=[everyone], flags=flags or [],
        goals=[GoalFinding(goal_id=None, metric=Metric.PROFICIENCY_RATE, subject=subject, subgroup=Subgroup.ALL_STUDENTS,
                           target=MATH_GOAL, actual=proficiency, status=status)],
        completed_at=datetime.now(UTC),
    )


def subject_entry(overview: dict, subject: str) -> dict | None:
    [school] = overview["schools"]
    return next((entry for entry in school["subjects"] if entry["subject"] == subject), None)


async def test_each_schools_newest_review_shows_with_its_flags_and_its_proficiency_trend_against_the_plan_goal(
        zone_stack, zone_id):
    school = await board_school(zone_stack, zone_id)
    await school.created_and_submitted()
    await school.board_votes("approve", "approve", "approve", "approve")  # 4 of 7: plan.approved with its goals
    low_participation = IntegrityFlag(kind="low_participation", subgroup=Subgroup.ALL_STUDENTS,
                                      summary="88.0% of all_students students tested; the policy's minimum is 95%.",
                                      evidence={"rate": 88.0})
    newest = review_event(zone_id, school.school_id, version=2, status=ReviewStatus.OFF_TRACK, proficiency=18.0,
                          participation=88.0, flags=[low_participation])
    newest_id = uuid.uuid4()
    await publish_as(zone_stack,
                     review_event(zone_id, school.school_id, school_year="2024-25", proficiency=25.0),
                     newest,
                     # Version 1 replayed after version 2 (e.g. from a dead-letter topic), then version 2 redelivered.
                     review_event(zone_id, school.school_id, version=1, status=ReviewStatus.APPROACHING, proficiency=31.0),
                     newest,
                     review_event(zone_id, school.school_id, subject=Subject.ELA, status=ReviewStatus.INSUFFICIENT_DATA,
                                  proficiency=None),
                     source=RESULTS_SOURCE,
                     event_ids=[uuid.uuid4(), newest_id, uuid.uuid4(), newest_id, uuid.uuid4()])

    board = member_auth(zone_stack, zone_id, school.board[0])
    overview = await overview_when(
        zone_stack, zone_id, board,
        lambda body: (entry := subject_entry(body, "ELA")) is not None and entry["latest"] is not None
        and subject_entry(body, "MATH")["trend"][-1]["goal"] is not None,
        "the ELA review and the approved goals projected")

    assert overview["zone_id"] == zone_id and overview["subjects"] == ["ELA", "MATH"]
    assert overview["member"] == {"subject": school.board[0], "role": "board", "name": "Member 1", "seat": 1}
    [entry] = overview["schools"]
    assert (entry["id"], entry["name"], entry["code"], entry["grade_span"]) == (
        school.school_id, DUGGAN_NAME,
        await scalar(zone_stack, "SELECT code FROM plans.schools WHERE id = :s", s=school.school_id), "6-12")
    math = subject_entry(overview, "MATH")
    assert {k: v for k, v in math["latest"].items() if k != "completed_at"} == {
        "school_year": YEAR, "status": "off_track", "proficiency_rate": 18.0, "participation_rate": 88.0,
        "goal": MATH_GOAL, "version": 2, "reasons": [],  # a review made before reviews gave their reasons
        "flags": [{"kind": "low_participation", "subgroup": "all_students", "summary": low_participation.summary}],
    }
    assert math["trend"] == [{"school_year": "2024-25", "proficiency_rate": 25.0, "goal": None},
                             {"school_year": YEAR, "proficiency_rate": 18.0, "goal": MATH_GOAL}]
    ela = subject_entry(overview, "ELA")  # too few students: a status without figures; the plan sets no ELA proficiency goal
    assert (ela["latest"]["status"], ela["latest"]["proficiency_rate"], ela["latest"]["goal"]) == (
        "insufficient_data", None, None)
    assert ela["trend"] == [{"school_year": YEAR, "proficiency_rate": None, "goal": None}]
    assert await sql(zone_stack, "SELECT subject, school_year, version FROM notifications.school_reviews "
                                 "WHERE school_id = :s ORDER BY subject, school_year", s=uuid.UUID(school.school_id)) == [
        ("ELA", YEAR, 1), ("MATH", "2024-25", 1), ("MATH", YEAR, 2)]


async def test_the_overview_says_why_each_status_is_what_it_is_in_the_reviews_own_sentences(zone_stack, zone_id):
    school = await board_school(zone_stack, zone_id)
    why = StatusReason(
        rule="below_band_of_last_year", status=ReviewStatus.OFF_TRACK, actual=15, reference=26, difference=-11, band=5,
        sentence="Off track: 15% proficient, 11 points below last year's 26%; the zone policy calls a drop of more "
                 "than 5 points off track.")
    goal_why = StatusReason(rule="goal_below_band", status=ReviewStatus.OFF_TRACK, sentence=(
        "Off track: 15% proficient, 19 points below the goal of 34%; the zone policy calls more than 5 points below a "
        "goal off track."))
    reviewed = review_event(zone_id, school.school_id, status=ReviewStatus.OFF_TRACK, proficiency=15.0)
    reviewed.goals[0].reason = goal_why
    await publish_as(zone_stack, reviewed.model_copy(update={"reason": why}), source=RESULTS_SOURCE)

    overview = await overview_when(
        zone_stack, zone_id, member_auth(zone_stack, zone_id, school.board[0]),
        lambda body: (entry := subject_entry(body, "MATH")) is not None and entry["latest"] is not None,
        "the review projected")
    # Kept by the board's own projection: the page reads them without asking the results service.
    assert subject_entry(overview, "MATH")["latest"]["reasons"] == [why.sentence, goal_why.sentence]


async def test_a_plan_awaits_a_members_vote_until_they_vote_and_everyones_until_the_board_decides(zone_stack, zone_id):
    school = await board_school(zone_stack, zone_id)
    plan = await school.created_and_submitted()
    first, second, fifth = (member_auth(zone_stack, zone_id, school.board[n]) for n in (0, 1, 4))

    overview = await overview_when(zone_stack, zone_id, first, lambda body: body["plans_awaiting_vote"],
                                   "the submitted plan listed")
    [awaiting] = overview["plans_awaiting_vote"]
    board_url = zone_stack.kits["notifications"].settings.ezone_notifications_url
    route = f"/zones/{zone_id}/schools/{school.school_id}/plans/{YEAR}"
    link = f"{board_url}/board/schools/{school.school_id}/plans/{YEAR}"
    assert {k: v for k, v in awaiting.items() if k != "submitted_at"} == {
        "plan_id": plan["id"], "version": 1, "school_id": school.school_id, "school_name": DUGGAN_NAME,
        "school_year": YEAR, "amendment": False, "link": link,
    }
    # The link is the plan's page on the board; the page reads the plan from this route with the member's token.
    opened = await zone_stack.clients["plans"].get(route, headers=first)
    assert opened.status_code == 200 and opened.json()["id"] == plan["id"], opened.text

    await school.board_votes("approve")
    await overview_when(zone_stack, zone_id, first, lambda body: body["plans_awaiting_vote"] == [],
                        "the plan gone from the list of the member who voted")
    still = await overview_when(zone_stack, zone_id, second, lambda body: True, "the second member's overview")
    assert [p["plan_id"] for p in still["plans_awaiting_vote"]] == [plan["id"]]

    for subject in school.board[1:4]:
        assert (await school.vote(subject, "approve")).status_code == 201
    await overview_when(zone_stack, zone_id, fifth, lambda body: body["plans_awaiting_vote"] == [],
                        "the approved plan gone from every member's list")

    # An amendment goes through the same decision: listed again (as version 2), until the board returns it.
    amended = await school.amend()
    assert amended.status_code == 201, amended.text
    assert (await school.submit()).status_code == 200
    overview = await overview_when(zone_stack, zone_id, fifth, lambda body: body["plans_awaiting_vote"],
                                   "the amendment listed")
    assert [(p["version"], p["amendment"]) for p in overview["plans_awaiting_vote"]] == [(2, True)]
    for subject in school.board[:4]:
        assert (await school.vote(subject, "return")).status_code == 201
    await overview_when(zone_stack, zone_id, fifth, lambda body: body["plans_awaiting_vote"] == [],
                        "the returned amendment gone")


async def test_plan_events_replayed_out_of_order_neither_reopen_a_decided_plan_nor_undo_a_changed_vote(zone_stack, zone_id):
    school = await board_school(zone_stack, zone_id)
    member = school.board[0]
    now = datetime.now(UTC)
    plan_id, school_uuid = uuid.uuid4(), uuid.UUID(school.school_id)

    def submitted(version: int) -> PlanSubmitted:
        return PlanSubmitted(zone_id=zone_id, school_id=school_uuid, plan_id=plan_id, school_year=YEAR, version=version,
                             amendment=False, submitted_by="principal", submitted_at=now - timedelta(hours=3 - version))

    def vote(decision: str, cast_at: datetime) -> PlanVoteCast:
        return PlanVoteCast(zone_id=zone_id, school_id=school_uuid, plan_id=plan_id, version=2, member_id=uuid.uuid4(),
                            subject=member, decision=decision, cast_at=cast_at)

    returned = PlanReturned(zone_id=zone_id, school_id=school_uuid, plan_id=plan_id, school_year=YEAR, version=1,
                            comments=[], approvals=0, returns=4, returned_at=now - timedelta(hours=1))
    await publish_as(zone_stack, returned, submitted(1), submitted(1), submitted(2), source=PLANS_SOURCE)
    overview = await overview_when(zone_stack, zone_id, member_auth(zone_stack, zone_id, member),
                                   lambda body: body["plans_awaiting_vote"], "version 2 listed")
    assert [p["version"] for p in overview["plans_awaiting_vote"]] == [2]  # version 1 stays returned
    assert await sql(zone_stack, "SELECT version, decided, submitted_at FROM notifications.open_plans WHERE plan_id = :p "
                                 "ORDER BY version", p=plan_id) == [
        (1, "returned", now - timedelta(hours=2)), (2, None, now - timedelta(hours=1))]

    # The member changed their vote; the first one arrives again afterwards. Version 3 marks the end of the replay.
    await publish_as(zone_stack, vote("approve", now - timedelta(minutes=5)), vote("return", now),
                     vote("approve", now - timedelta(minutes=5)), submitted(3), source=PLANS_SOURCE)
    await overview_when(zone_stack, zone_id, member_auth(zone_stack, zone_id, member),
                        lambda body: [p["version"] for p in body["plans_awaiting_vote"]] == [3],
                        "version 2 voted on, version 3 listed")
    assert await sql(zone_stack, "SELECT decision, cast_at FROM notifications.plan_votes WHERE plan_id = :p",
                     p=plan_id) == [("return", now)]


async def test_the_overview_is_for_board_district_and_admin_tokens_of_the_zone(zone_stack, zone_id):
    school = await board_school(zone_stack, zone_id)
    path = f"/zones/{zone_id}/board/overview"
    client = zone_stack.clients["notifications"]

    assert_problem(await client.get(path, headers=member_auth(zone_stack, "another-zone", "board-seat-1@example.org")), 404)
    forbidden = assert_problem(await client.get(path, headers=member_auth(zone_stack, zone_id, "principal@example.org",
                                                                        "school", [school.school_id])), 403)
    assert "role is school" in forbidden["detail"]
    assert_problem(await client.get(path, headers=member_auth(zone_stack, zone_id, "sis@example.org", "sis",
                                                            [school.school_id])), 403)
    assert_problem(await client.get(path), 401)
    for role in ("district", "admin"):
        response = await client.get(path, headers=member_auth(zone_stack, zone_id, f"{role}@example.org", role))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["member"]["role"], body["plans_awaiting_vote"]) == (role, [])  # they do not vote
        assert [s["id"] for s in body["schools"]] == [school.school_id]


async def test_sign_in_keeps_the_token_in_a_strict_http_only_cookie_that_the_page_and_the_api_accept(
        zone_stack, zone_id, notifications):
    school = await board_school(zone_stack, zone_id)
    token = zone_stack.token("board", zone_id, subject=school.board[0])

    form = await notifications.get("/board")
    assert form.status_code == 200 and 'action="/board/sign-in"' in form.text
    assert "script-src 'self'" in form.headers["content-security-policy"]

    signed_in = await notifications.post("/board/sign-in", content=urlencode({"token": token}), headers=FORM)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/board")
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{BOARD_COOKIE}={token};")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes.keys() and "secure" not in attributes  # plain HTTP
    assert (attributes["samesite"], attributes["path"]) == ("SameSite=strict", "Path=/")
    assert 8 * 3600 - 60 <= int(attributes["max-age"].split("=")[1]) <= 8 * 3600  # until the token expires

    session = {"Cookie": f"{BOARD_COOKIE}={token}"}
    page = await notifications.get("/board", headers=session)
    assert page.status_code == 200
    assert f'data-zone="{zone_id}"' in page.text and '<script type="module" src="/board/static/board.js">' in page.text
    overview = await notifications.get(f"/zones/{zone_id}/board/overview", headers=session)
    assert overview.status_code == 200 and overview.json()["member"]["subject"] == school.board[0]

    linked = await notifications.get("/board/sign-in", params={"token": token})  # the dev sign-in link
    assert (linked.status_code, linked.headers["location"]) == (303, "/board")
    assert linked.headers["set-cookie"].startswith(f"{BOARD_COOKIE}={token};")
    assert linked.headers["referrer-policy"] == "no-referrer"

    signed_out = await notifications.post("/board/sign-out", headers=session)
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/board")
    assert signed_out.headers["set-cookie"].startswith(f'{BOARD_COOKIE}="";') and "Max-Age=0" in signed_out.headers["set-cookie"]

    script = await notifications.get("/board/static/board.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert (await notifications.get("/board/static/board.css")).headers["content-type"].startswith("text/css")
    assert_problem(await notifications.get("/board/static/secrets.txt"), 404)


@pytest.mark.parametrize(("token_of", "status", "message"), [
    (lambda stack, zone: "not-a-token", 401, "not a well-formed JWT"),
    (lambda stack, zone: stack.token("board", zone, subject="seat@example.org", ttl_seconds=-120), 401, "has expired"),
    (lambda stack, zone: stack.token("sis", zone, [str(uuid.uuid4())]), 403,
     "The board page is for board members, school leaders and district or admin staff"),
    (lambda stack, zone: "", 400, "Paste your board token"),
], ids=["garbage", "expired", "sis-role", "empty"])
async def test_sign_in_refuses_a_bad_expired_or_system_token_and_says_why(zone_stack, zone_id, notifications,
                                                                         token_of, status, message):
    refused = await notifications.post("/board/sign-in", content=urlencode({"token": token_of(zone_stack, zone_id)}),
                                       headers=FORM)
    assert refused.status_code == status
    assert refused.headers["content-type"].startswith("text/html")
    assert message in refused.text and 'role="alert"' in refused.text
    assert "set-cookie" not in refused.headers


async def test_an_expired_session_shows_the_sign_in_form_again_and_drops_the_cookie(zone_stack, zone_id, notifications):
    expired = zone_stack.token("board", zone_id, subject="seat@example.org", ttl_seconds=-120)
    page = await notifications.get("/board", headers={"Cookie": f"{BOARD_COOKIE}={expired}"})
    assert page.status_code == 401
    assert "Please sign in again. The bearer token has expired" in page.text and 'action="/board/sign-in"' in page.text
    assert page.headers["set-cookie"].startswith(f'{BOARD_COOKIE}="";')
