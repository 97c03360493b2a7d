"""Board members (seats, terms, who is seated on a day) and school leadership teams."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from ezone_plans.board.service import seated_members
from sqlalchemy import text

from tests.helpers import register_school, register_zone, scalar, school_code
from tests.integration.plans.support import (
    assert_invalid_fields, assert_problem, audit_entries, call, footprint,
)
from tests.integration.test_registry_api import sent_at_once
from tests.stack import Stack

TODAY = date.today()
RIVERA = {"name": "Ana Rivera", "subject": "rivera@idp.example", "seat": 1, "appointed_by": "state",
          "active_from": "2024-07-01"}
OKAFOR = {"name": "Chidi Okafor", "subject": "okafor@idp.example", "seat": 2, "appointed_by": "district",
          "active_from": "2024-07-01", "active_to": "2025-06-30"}
PRINCIPAL = {"name": "Maria Ruiz", "subject": "ruiz@idp.example", "role": "principal", "elected_on": "2024-06-01"}
TEACHER = {"name": "Sam Lee", "subject": "lee@idp.example", "role": "teacher_leader", "elected_on": "2024-06-01",
           "term_ends": "2026-06-30"}


async def add_member(stack: Stack, zone_id: str, body: dict, role: str = "admin", zone: str | None = None) -> httpx.Response:
    return await call(stack, "POST", f"/zones/{zone_id}/board-members", role, zone, json=body)


async def seated(stack: Stack, zone_id: str, on: str | None = None, role: str = "admin") -> list[str]:
    response = await call(stack, "GET", f"/zones/{zone_id}/board-members", role, schools=["any"],
                          params={"active_on": on} if on else None)
    assert response.status_code == 200, response.text
    return [member["subject"] for member in response.json()]


async def school_in_zone(stack: Stack, zone_id: str) -> str:
    await register_zone(stack, zone_id)
    return (await register_school(stack, zone_id))["id"]


async def add_leader(stack: Stack, zone_id: str, school_id: str, body: dict, role: str = "admin",
                     zone: str | None = None) -> httpx.Response:
    return await call(stack, "POST", f"/zones/{zone_id}/schools/{school_id}/leadership", role, zone, json=body)


async def team(stack: Stack, zone_id: str, school_id: str, **params: object) -> list[str]:
    response = await call(stack, "GET", f"/zones/{zone_id}/schools/{school_id}/leadership", params=params)
    assert response.status_code == 200, response.text
    return [member["subject"] for member in response.json()]


# Board members


async def test_seating_a_member_lists_them_on_the_days_of_their_term_and_is_audited(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    response = await add_member(zone_stack, zone_id, RIVERA)
    assert response.status_code == 201, response.text
    assert (await add_member(zone_stack, zone_id, OKAFOR)).status_code == 201

    assert response.json() | RIVERA == response.json()
    assert await seated(zone_stack, zone_id, role="board") == [RIVERA["subject"]]  # today: Okafor's term is over
    assert await seated(zone_stack, zone_id, "2025-06-30", role="school") == [RIVERA["subject"], OKAFOR["subject"]]
    assert await seated(zone_stack, zone_id, "2024-06-30") == []
    assert await audit_entries(zone_stack, "board_member.added", response.json()["id"]) == 1


async def test_seated_members_is_what_vote_counting_sees(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    for body in (RIVERA, OKAFOR, {**OKAFOR, "subject": "next@idp.example", "active_from": "2025-07-01", "active_to": None}):
        assert (await add_member(zone_stack, zone_id, body)).status_code == 201

    async with zone_stack.kits["plans"].sessions() as session:
        on_last_day = await seated_members(session, zone_id, date(2025, 6, 30))
        on_next_day = await seated_members(session, zone_id, date(2025, 7, 1))
    assert [(m.seat, m.subject) for m in on_last_day] == [(1, RIVERA["subject"]), (2, OKAFOR["subject"])]
    assert [(m.seat, m.subject) for m in on_next_day] == [(1, RIVERA["subject"]), (2, "next@idp.example")]


async def test_a_member_with_every_field_wrong_is_422_listing_all_and_stores_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)
    body = {"name": "", "seat": 0, "appointed_by": "mayor", "active_from": "2025-07-01", "active_to": "2025-06-30",
            "vote_weight": 2}

    assert_invalid_fields(await add_member(zone_stack, zone_id, body),
                          {"name", "subject", "seat", "appointed_by", "active_to", "vote_weight"})
    assert await footprint(zone_stack, zone_id) == before


async def test_a_seat_beyond_the_policys_board_size_is_422_and_stores_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)

    response = await add_member(zone_stack, zone_id, {**RIVERA, "seat": 8})
    assert_invalid_fields(response, {"seat"})
    assert "7 seats" in response.json()["errors"][0]["reason"]
    assert await footprint(zone_stack, zone_id) == before


async def test_the_same_member_twice_answers_200_unchanged_and_other_details_409(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    first = await add_member(zone_stack, zone_id, RIVERA)
    before = await footprint(zone_stack, zone_id)
    second = await add_member(zone_stack, zone_id, RIVERA)

    assert (first.status_code, second.status_code) == (201, 200), second.text
    assert second.json() == first.json()
    assert await footprint(zone_stack, zone_id) == before
    assert_problem(await add_member(zone_stack, zone_id, {**RIVERA, "seat": 3}), 409)
    assert await footprint(zone_stack, zone_id) == before


async def test_a_seat_taken_on_overlapping_dates_is_409_and_a_successor_after_the_term_is_seated(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    assert (await add_member(zone_stack, zone_id, OKAFOR)).status_code == 201
    before = await footprint(zone_stack, zone_id)

    on_the_last_day = {**OKAFOR, "subject": "early@idp.example", "active_from": "2025-06-30", "active_to": None}
    body = assert_problem(await add_member(zone_stack, zone_id, on_the_last_day), 409)
    assert "Seat 2" in body["detail"]
    earlier = {**OKAFOR, "subject": "earlier@idp.example", "active_from": "2023-07-01", "active_to": "2024-07-01"}
    assert_problem(await add_member(zone_stack, zone_id, earlier), 409)
    assert await footprint(zone_stack, zone_id) == before

    successor = {**on_the_last_day, "active_from": "2025-07-01"}
    assert (await add_member(zone_stack, zone_id, successor)).status_code == 201


async def test_two_members_claiming_the_same_seat_at_once_seat_exactly_one(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    claims = [add_member(zone_stack, zone_id, {**RIVERA, "subject": f"claimant-{n}@idp.example"}) for n in range(2)]

    responses = await sent_at_once(zone_stack, "plans.board_members", claims)

    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.board_members WHERE zone_id = :z", z=zone_id) == 1


async def test_ending_a_term_is_audited_with_before_and_after_and_a_repeat_changes_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    member_id = (await add_member(zone_stack, zone_id, RIVERA)).json()["id"]
    yesterday = (TODAY - timedelta(days=1)).isoformat()

    first = await call(zone_stack, "PATCH", f"/zones/{zone_id}/board-members/{member_id}", json={"active_to": yesterday})
    second = await call(zone_stack, "PATCH", f"/zones/{zone_id}/board-members/{member_id}", json={"active_to": yesterday})

    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json()["active_to"] == second.json()["active_to"] == yesterday
    assert await seated(zone_stack, zone_id) == []
    assert await audit_entries(zone_stack, "board_member.updated", member_id) == 1
    async with zone_stack.kits["plans"].engine.connect() as conn:
        entry = (await conn.execute(text(
            "SELECT before, after FROM plans.audit_log WHERE action = 'board_member.updated' AND entity_id = :id"),
            {"id": member_id})).mappings().one()
    assert (entry["before"]["active_to"], entry["after"]["active_to"]) == (None, yesterday)


async def test_a_bad_member_change_is_422_or_409_and_changes_nothing(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    member_id = (await add_member(zone_stack, zone_id, RIVERA)).json()["id"]
    assert (await add_member(zone_stack, zone_id, {**OKAFOR, "active_to": None})).status_code == 201
    before = await footprint(zone_stack, zone_id)
    path = f"/zones/{zone_id}/board-members/{member_id}"

    assert_invalid_fields(await call(zone_stack, "PATCH", path, json={"seat": None, "name": None, "colour": "x"}),
                          {"seat", "name", "colour"})
    # The subject identifies the member: sent back as read it is fine, another one is refused.
    assert_invalid_fields(await call(zone_stack, "PATCH", path, json={"subject": "x", "name": "Renamed"}), {"subject"})
    assert_invalid_fields(await call(zone_stack, "PATCH", path, json={"active_to": "2024-06-30"}), {"active_to"})
    assert_invalid_fields(await call(zone_stack, "PATCH", path, json={"seat": 9}), {"seat"})
    assert_problem(await call(zone_stack, "PATCH", path, json={"seat": 2}), 409)
    assert await footprint(zone_stack, zone_id) == before


@pytest.mark.parametrize(("role", "elsewhere", "status"), [("admin", True, 404), ("district", False, 403), ("board", False, 403)])
async def test_board_changes_by_a_caller_who_may_not_are_refused_and_change_nothing(zone_stack, zone_id, role, elsewhere, status):
    await register_zone(zone_stack, zone_id)
    member_id = (await add_member(zone_stack, zone_id, RIVERA)).json()["id"]
    before = await footprint(zone_stack, zone_id)
    zone = f"{zone_id}-other" if elsewhere else None

    responses = [
        await add_member(zone_stack, zone_id, OKAFOR, role, zone),
        await call(zone_stack, "PATCH", f"/zones/{zone_id}/board-members/{member_id}", role, zone, json={"seat": 3}),
    ]
    for response in responses:
        assert_problem(response, status)
        assert RIVERA["name"] not in response.text
    assert await footprint(zone_stack, zone_id) == before


async def test_another_zones_board_is_404_with_nothing_of_it_shown(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    await add_member(zone_stack, zone_id, RIVERA)
    response = await call(zone_stack, "GET", f"/zones/{zone_id}/board-members", zone=f"{zone_id}-other")
    assert_problem(response, 404)
    assert RIVERA["name"] not in response.text


# Leadership teams


async def test_a_school_team_has_one_active_principal_and_any_number_of_teacher_leaders(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    principal = await add_leader(zone_stack, zone_id, school_id, PRINCIPAL, "district")
    assert principal.status_code == 201, principal.text
    assert (await add_leader(zone_stack, zone_id, school_id, TEACHER)).status_code == 201
    assert (await add_leader(zone_stack, zone_id, school_id, {**TEACHER, "subject": "kim@idp.example", "name": "Kim Park"})).status_code == 201
    before = await footprint(zone_stack, zone_id)

    second_principal = await add_leader(zone_stack, zone_id, school_id, {**PRINCIPAL, "subject": "other@idp.example"})
    assert PRINCIPAL["name"] in assert_problem(second_principal, 409)["detail"]
    assert await footprint(zone_stack, zone_id) == before
    assert await team(zone_stack, zone_id, school_id) == [PRINCIPAL["subject"], "kim@idp.example", TEACHER["subject"]]
    assert principal.json() | PRINCIPAL | {"active": True, "school_id": school_id} == principal.json()
    assert await audit_entries(zone_stack, "leadership_member.added", principal.json()["id"]) == 1


async def test_a_leader_with_every_field_wrong_is_422_listing_all_and_stores_nothing(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    before = await footprint(zone_stack, zone_id)
    body = {"name": "", "subject": "", "role": "coach", "elected_on": "2025-06-01", "term_ends": "2025-05-31", "seat": 1}

    assert_invalid_fields(await add_leader(zone_stack, zone_id, school_id, body),
                          {"name", "subject", "role", "term_ends", "seat"})
    assert await footprint(zone_stack, zone_id) == before


async def test_the_same_leader_twice_answers_200_unchanged_and_other_details_409(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    first = await add_leader(zone_stack, zone_id, school_id, TEACHER)
    before = await footprint(zone_stack, zone_id)
    second = await add_leader(zone_stack, zone_id, school_id, TEACHER)

    assert (first.status_code, second.status_code) == (201, 200), second.text
    assert second.json() == first.json()
    assert_problem(await add_leader(zone_stack, zone_id, school_id, {**TEACHER, "term_ends": "2027-06-30"}), 409)
    assert await footprint(zone_stack, zone_id) == before


async def test_taking_a_leader_off_the_team_is_audited_once_and_frees_the_principals_place(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    member_id = (await add_leader(zone_stack, zone_id, school_id, PRINCIPAL)).json()["id"]
    path = f"/zones/{zone_id}/schools/{school_id}/leadership/{member_id}"

    first = await call(zone_stack, "DELETE", path, "district")
    second = await call(zone_stack, "DELETE", path, "district")

    assert (first.status_code, second.status_code) == (204, 204), second.text
    assert await team(zone_stack, zone_id, school_id) == []
    assert await team(zone_stack, zone_id, school_id, include_inactive="true") == [PRINCIPAL["subject"]]
    assert await audit_entries(zone_stack, "leadership_member.updated", member_id) == 1
    successor = {**PRINCIPAL, "subject": "next@idp.example", "name": "Jo Next"}
    assert (await add_leader(zone_stack, zone_id, school_id, successor)).status_code == 201
    # Putting the former principal back would make two.
    assert_problem(await call(zone_stack, "PATCH", path, json={"active": True}), 409)


async def test_a_bad_leader_change_is_422_and_changes_nothing(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    member_id = (await add_leader(zone_stack, zone_id, school_id, TEACHER)).json()["id"]
    before = await footprint(zone_stack, zone_id)
    path = f"/zones/{zone_id}/schools/{school_id}/leadership/{member_id}"

    assert_invalid_fields(await call(zone_stack, "PATCH", path, json={"role": "coach", "active": None, "colour": "x"}),
                          {"role", "active", "colour"})
    assert_invalid_fields(await call(zone_stack, "PATCH", path, json={"subject": "x", "name": "Renamed"}), {"subject"})
    assert_invalid_fields(await call(zone_stack, "PATCH", path, json={"term_ends": "2024-05-31"}), {"term_ends"})
    assert await footprint(zone_stack, zone_id) == before


async def test_a_school_token_sees_its_own_team_only(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    other = {"code": school_code(), "name": "Other", "grade_span": "6-8"}
    other_id = (await register_school(zone_stack, zone_id, other))["id"]
    await add_leader(zone_stack, zone_id, other_id, PRINCIPAL)

    own = await call(zone_stack, "GET", f"/zones/{zone_id}/schools/{school_id}/leadership", "school", schools=[school_id])
    assert own.status_code == 200 and own.json() == []
    response = await call(zone_stack, "GET", f"/zones/{zone_id}/schools/{other_id}/leadership", "school", schools=[school_id])
    assert_problem(response, 403)
    assert PRINCIPAL["name"] not in response.text


@pytest.mark.parametrize(("role", "elsewhere", "status"), [("admin", True, 404), ("board", False, 403), ("school", False, 403)])
async def test_team_changes_by_a_caller_who_may_not_are_refused_and_change_nothing(zone_stack, zone_id, role, elsewhere, status):
    school_id = await school_in_zone(zone_stack, zone_id)
    member_id = (await add_leader(zone_stack, zone_id, school_id, PRINCIPAL)).json()["id"]
    before = await footprint(zone_stack, zone_id)
    zone = f"{zone_id}-other" if elsewhere else None
    path = f"/zones/{zone_id}/schools/{school_id}/leadership"

    responses = [
        await call(zone_stack, "POST", path, role, zone, schools=[school_id], json=TEACHER),
        await call(zone_stack, "PATCH", f"{path}/{member_id}", role, zone, schools=[school_id], json={"name": "X"}),
        await call(zone_stack, "DELETE", f"{path}/{member_id}", role, zone, schools=[school_id]),
    ]
    for response in responses:
        assert_problem(response, status)
        assert PRINCIPAL["name"] not in response.text
    assert await footprint(zone_stack, zone_id) == before


async def test_a_team_member_of_another_school_is_404_through_this_one(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    other = {"code": school_code(), "name": "Other", "grade_span": "6-8"}
    other_id = (await register_school(zone_stack, zone_id, other))["id"]
    member_id = (await add_leader(zone_stack, zone_id, other_id, PRINCIPAL)).json()["id"]
    before = await footprint(zone_stack, zone_id)

    assert_problem(await call(zone_stack, "DELETE", f"/zones/{zone_id}/schools/{school_id}/leadership/{member_id}"), 404)
    assert await footprint(zone_stack, zone_id) == before


async def test_a_leader_change_is_audited_with_before_and_after_and_a_repeat_changes_nothing(zone_stack, zone_id):
    school_id = await school_in_zone(zone_stack, zone_id)
    member_id = (await add_leader(zone_stack, zone_id, school_id, TEACHER)).json()["id"]
    path = f"/zones/{zone_id}/schools/{school_id}/leadership/{member_id}"

    first = await call(zone_stack, "PATCH", path, "district", json={"term_ends": "2027-06-30"})
    second = await call(zone_stack, "PATCH", path, "district", json={"term_ends": "2027-06-30"})

    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json() == second.json() == {**first.json(), "term_ends": "2027-06-30"}
    assert await audit_entries(zone_stack, "leadership_member.updated", member_id) == 1
    async with zone_stack.kits["plans"].engine.connect() as conn:
        entry = (await conn.execute(text(
            "SELECT before, after, school_id FROM plans.audit_log WHERE action = 'leadership_member.updated' AND entity_id = :id"),
            {"id": member_id})).mappings().one()
    assert (entry["before"]["term_ends"], entry["after"]["term_ends"], entry["school_id"]) == ("2026-06-30", "2027-06-30", school_id)
