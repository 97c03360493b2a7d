"""Alerts from events, on the real broker and database: who gets one, exactly once, and what it says."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from ezone_schemas import PlanApproved, PlanSubmitted, SchoolTierChanged, topics
from ezone_schemas.plans import BudgetEnvelope
from ezone_schemas.results import StatusReason
from ezone_schemas.vocabulary import AutonomyTier, ReviewStatus, Subject

from tests.events import publish_as, published_events
from tests.helpers import register_school, register_zone
from tests.stack import Stack

from .support import PLANS_SOURCE, RESULTS_SOURCE, SeededZone, member_auth, review, seed_zone, sql, wait_for_sql

ALERTS_OF_EVENT = "SELECT count(*) FROM notifications.alerts WHERE source_event_id = :e"


async def inbox(stack: Stack, zone_id: str, subject: str, role: str = "board", **params: object) -> dict:
    schools = params.pop("schools", None)
    response = await stack.clients["notifications"].get(
        f"/zones/{zone_id}/alerts", params=params, headers=member_auth(stack, zone_id, subject, role, schools))
    assert response.status_code == 200, response.text
    return response.json()


async def test_off_track_review_alerts_every_seated_board_member_critically_and_the_school_team(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    [event_id] = await publish_as(zone_stack, review(zone), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=event_id)

    rows = await sql(zone_stack, "SELECT recipient, severity, audience FROM notifications.alerts WHERE source_event_id = :e",
                     e=event_id)
    assert {(r.recipient, r.severity, r.audience) for r in rows} == {
        *((m, "critical", "board") for m in zone.board), *((m, "warning", "school_team") for m in zone.team)}
    page = await inbox(zone_stack, zone_id, zone.board[0])
    [alert] = page["items"]
    assert alert["title"] == "John J Duggan Academy: Math off track (2025-26)"
    assert alert["body"].startswith("John J Duggan Academy — Math proficiency 18% vs goal 30%. Data flagged: ")
    assert alert["source_event_id"] == str(event_id) and alert["source_type"] == "review.completed"
    assert alert["trace_id"] and len(alert["trace_id"]) == 32
    assert "reviews" in alert["links"]["review"] and alert["links"]["board"].endswith("/board")
    assert page["unread"] == 1
    raised = await published_events(zone_stack, topics.NOTIFICATIONS, "org.ezone.notifications.alert.raised.v1",
                                    where={"source_event_id": str(event_id)}, expected=5)
    assert len(raised) == 5


async def test_a_review_alert_says_the_reviews_reason(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    because = StatusReason(
        rule="below_band_of_last_year", status=ReviewStatus.OFF_TRACK, actual=15, reference=26, difference=-11, band=5,
        sentence="Off track: 15% proficient, 11 points below last year's 26%; the zone policy calls a drop of more than "
                 "5 points off track.")
    [event_id] = await publish_as(zone_stack, review(zone, flags=False).model_copy(update={"reason": because}),
                                  source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=event_id)
    [alert] = (await inbox(zone_stack, zone_id, zone.board[0]))["items"]
    assert alert["body"] == f"John J Duggan Academy — Math 2025-26: {because.sentence}"


async def test_history_is_recorded_but_alerts_no_one_and_settles_its_threads_older_alerts(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    [first] = await publish_as(zone_stack, review(zone, school_year="2020-21"), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=first)
    history = review(zone, school_year="2020-21", version=2).model_copy(update={"current": False})
    tier = SchoolTierChanged(zone_id=zone_id, school_id=zone.school_id, previous_tier=AutonomyTier.STANDARD,
                             tier=AutonomyTier.INTENSIVE_SUPPORT, reason="off track in 2019-20 and 2020-21", rule="r",
                             policy_version=1, changed_at=datetime.now(UTC), current=False)
    marker = tier.model_copy(update={"previous_tier": AutonomyTier.INTENSIVE_SUPPORT, "tier": AutonomyTier.STANDARD,
                                     "current": True})  # the same school's next change: consumed after the first
    [_, marker_id] = await publish_as(zone_stack, tier, marker, source=PLANS_SOURCE)
    [history_id] = await publish_as(zone_stack, history, source=RESULTS_SOURCE)
    # Recorded for the board page: the newer version of the school's 2020-21 review.
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.school_reviews WHERE review_id = :r", 1,
                       r=history.review_id)
    assert (await sql(zone_stack, ALERTS_OF_EVENT, e=history_id))[0][0] == 0
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=marker_id)
    assert (await sql(zone_stack, "SELECT count(*) FROM notifications.alerts WHERE zone_id = :z AND source_type = "
                                  "'school.tier_changed'", z=zone_id))[0][0] == 5  # the marker's alone
    # The older review alert of the thread left the inbox: what it said is no longer the newest review.
    assert [a["source_type"] for a in (await inbox(zone_stack, zone_id, zone.board[0]))["items"]] == ["school.tier_changed"]
    assert (await sql(zone_stack, "SELECT count(*) FROM notifications.deliveries d JOIN notifications.alerts a ON "
                                  "a.id = d.alert_id WHERE a.source_event_id = :e", e=history_id))[0][0] == 0


async def test_a_member_whose_term_ended_and_a_team_member_taken_off_get_nothing(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    [event_id] = await publish_as(zone_stack, review(zone), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=event_id)
    recipients = {r.recipient for r in await sql(
        zone_stack, "SELECT recipient FROM notifications.alerts WHERE source_event_id = :e", e=event_id)}
    assert zone.former_member not in recipients and f"gone-{zone_id}@example.org" not in recipients


async def test_redelivered_review_raises_one_alert_per_recipient(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    event = review(zone)
    event_id = uuid.uuid4()
    for _ in range(3):
        await publish_as(zone_stack, event, source=RESULTS_SOURCE, event_ids=[event_id])
    marker = review(zone, subject=Subject.ELA)  # a later event: all before it were consumed
    [marker_id] = await publish_as(zone_stack, marker, source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=marker_id)

    assert (await sql(zone_stack, ALERTS_OF_EVENT, e=event_id))[0][0] == 5
    assert (await sql(zone_stack, "SELECT count(DISTINCT recipient) FROM notifications.alerts WHERE source_event_id = :e",
                      e=event_id))[0][0] == 5
    raised = await published_events(zone_stack, topics.NOTIFICATIONS, "org.ezone.notifications.alert.raised.v1",
                                    where={"source_event_id": str(event_id)}, expected=6, timeout_s=3)
    assert len(raised) == 5


async def test_newer_review_of_the_same_school_and_subject_supersedes_the_unread_older_alert(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    reader = zone.board[0]
    [first] = await publish_as(zone_stack, review(zone, version=1), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=first)
    read_one = (await inbox(zone_stack, zone_id, reader))["items"][0]
    response = await zone_stack.clients["notifications"].post(
        f"/zones/{zone_id}/alerts/{read_one['id']}/read", headers=member_auth(zone_stack, zone_id, reader))
    assert response.status_code == 200

    [second] = await publish_as(zone_stack, review(zone, version=2, proficiency=16.0), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=second)

    other = zone.board[1]
    active = (await inbox(zone_stack, zone_id, other))["items"]
    assert [a["source_event_id"] for a in active] == [str(second)]
    assert "16%" in active[0]["body"]
    superseded = (await inbox(zone_stack, zone_id, other, state="superseded"))["items"]
    assert [a["source_event_id"] for a in superseded] == [str(first)]
    # What the member already read stays in the inbox as read; it is not rewritten.
    mine = (await inbox(zone_stack, zone_id, reader))["items"]
    assert {a["source_event_id"] for a in mine} == {str(first), str(second)}


async def test_an_older_review_arriving_after_a_newer_one_is_stored_superseded(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    [newer] = await publish_as(zone_stack, review(zone, version=3), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=newer)
    [older] = await publish_as(zone_stack, review(zone, version=2), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=older)

    active = (await inbox(zone_stack, zone_id, zone.board[0]))["items"]
    assert [a["source_event_id"] for a in active] == [str(newer)]
    late = await sql(zone_stack, "SELECT superseded_by_event FROM notifications.alerts WHERE source_event_id = :e", e=older)
    assert {row[0] for row in late} == {newer}


async def test_a_review_back_on_track_settles_the_unread_off_track_alerts_without_a_new_alert(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    [off] = await publish_as(zone_stack, review(zone, version=1), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=off)
    [meeting] = await publish_as(zone_stack, review(zone, version=2, status=ReviewStatus.MEETING, proficiency=35.0,
                                                     participation=98.0, flags=False), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.alerts WHERE superseded_by_event = :e", 5, e=meeting)
    assert (await sql(zone_stack, ALERTS_OF_EVENT, e=meeting))[0][0] == 0
    assert (await inbox(zone_stack, zone_id, zone.board[0]))["items"] == []


async def test_another_zones_members_never_receive_or_see_the_alert(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    other_zone = await seed_zone(zone_stack, f"{zone_id}-b")
    [event_id] = await publish_as(zone_stack, review(zone), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=event_id)
    alert = (await inbox(zone_stack, zone_id, zone.board[0]))["items"][0]

    assert (await inbox(zone_stack, other_zone.zone_id, other_zone.board[0]))["items"] == []
    outsider = member_auth(zone_stack, other_zone.zone_id, other_zone.board[0])
    client = zone_stack.clients["notifications"]
    for method, path in [("GET", f"/zones/{zone_id}/alerts"), ("GET", f"/zones/{zone_id}/alerts/{alert['id']}"),
                         ("POST", f"/zones/{zone_id}/alerts/{alert['id']}/read"),
                         ("GET", f"/zones/{zone_id}/alerts/{alert['id']}/deliveries")]:
        response = await client.request(method, path, headers=outsider)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # Within the zone, one member cannot read or mark another member's alert.
    colleague = member_auth(zone_stack, zone_id, zone.board[1])
    for method, path in [("GET", f"/zones/{zone_id}/alerts/{alert['id']}"),
                         ("POST", f"/zones/{zone_id}/alerts/{alert['id']}/acknowledge")]:
        assert (await client.request(method, path, headers=colleague)).status_code == 404
    assert (await inbox(zone_stack, zone_id, zone.board[0]))["items"][0]["acknowledged_at"] is None


async def test_read_and_acknowledge_are_idempotent_and_filters_narrow_the_inbox(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    [event_id] = await publish_as(zone_stack, review(zone), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=event_id)
    member = zone.board[0]
    headers = member_auth(zone_stack, zone_id, member)
    client = zone_stack.clients["notifications"]
    alert = (await inbox(zone_stack, zone_id, member))["items"][0]

    first = (await client.post(f"/zones/{zone_id}/alerts/{alert['id']}/acknowledge", headers=headers)).json()
    await asyncio.sleep(0.05)
    again = (await client.post(f"/zones/{zone_id}/alerts/{alert['id']}/acknowledge", headers=headers)).json()
    assert first["acknowledged_at"] == again["acknowledged_at"] and first["read_at"] == again["read_at"]
    assert first["read_at"] is not None

    assert (await inbox(zone_stack, zone_id, member, state="unread"))["items"] == []
    assert len((await inbox(zone_stack, zone_id, member, state="acknowledged"))["items"]) == 1
    assert (await inbox(zone_stack, zone_id, member, severity="info"))["items"] == []
    assert len((await inbox(zone_stack, zone_id, member, severity="critical", school_id=str(zone.school_id)))["items"]) == 1
    bad = await client.get(f"/zones/{zone_id}/alerts", params={"severity": "urgent"}, headers=headers)
    assert bad.status_code == 422 and "urgent" in bad.json()["detail"]
    bad_state = await client.get(f"/zones/{zone_id}/alerts", params={"state": "new"}, headers=headers)
    assert bad_state.status_code == 422 and bad_state.headers["content-type"] == "application/problem+json"


async def test_a_polling_client_gets_only_the_alerts_newer_than_the_seq_it_holds(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    member = zone.board[0]
    event_ids = []
    for subject in (Subject.MATH, Subject.ELA, Subject.SCIENCE):
        event_ids += await publish_as(zone_stack, review(zone, subject=subject), source=RESULTS_SOURCE)
        await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 5, e=event_ids[-1])
    held = (await inbox(zone_stack, zone_id, member, state="all", limit=1))["items"][0]["seq"]
    first = min(a["seq"] for a in (await inbox(zone_stack, zone_id, member, state="all"))["items"])

    assert (await inbox(zone_stack, zone_id, member, state="all", after_seq=held)) == {
        "items": [], "unread": 3, "next_before_seq": None}
    newer = await inbox(zone_stack, zone_id, member, state="all", after_seq=first, limit=1)
    assert [a["seq"] for a in newer["items"]] == [held] and newer["next_before_seq"] == held
    rest = await inbox(zone_stack, zone_id, member, state="all", after_seq=first, before_seq=held)
    assert [a["source_event_id"] for a in rest["items"]] == [str(event_ids[1])] and rest["next_before_seq"] is None


async def test_submitted_plan_asks_the_board_to_vote_and_its_approval_settles_that_request(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    plan_id = uuid.uuid4()
    [submitted] = await publish_as(zone_stack, PlanSubmitted(
        zone_id=zone_id, school_id=zone.school_id, plan_id=plan_id, school_year="2026-27", version=1, amendment=False,
        submitted_by=zone.team[0], submitted_at="2026-11-01T12:00:00Z"), source=PLANS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 3, e=submitted)
    ask = (await inbox(zone_stack, zone_id, zone.board[0]))["items"][0]
    assert ask["severity"] == "info" and "awaits your vote" in ask["title"] and "plan" in ask["links"]

    [approved] = await publish_as(zone_stack, PlanApproved(
        zone_id=zone_id, school_id=zone.school_id, plan_id=plan_id, school_year="2026-27", version=1, goals=[],
        budget=BudgetEnvelope(per_pupil_allocation=9000, total=8_820_000, purchased_services_total=400_000),
        approvals=4, returns=1, approved_at="2026-11-05T12:00:00Z"), source=PLANS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 2, e=approved)  # the school's team hears of it
    assert (await inbox(zone_stack, zone_id, zone.board[0]))["items"] == []
    team_alert = (await inbox(zone_stack, zone_id, zone.team[0], role="school", schools=[str(zone.school_id)]))["items"][0]
    assert team_alert["title"] == "John J Duggan Academy: 2026-27 plan approved"
    assert "$8,820,000" in team_alert["body"]


async def test_a_zone_rule_change_takes_effect_for_later_events(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    client = zone_stack.clients["notifications"]
    staff = zone_stack.auth("district", zone_id)
    for name in ("review-off-track", "review-integrity-flag", "review-needs-attention", "review-flagged-for-school"):
        assert (await client.delete(f"/zones/{zone_id}/alert-rules/{name}", headers=staff)).status_code == 204
    rule = {"event_type": "review.completed", "severity": "warning", "audiences": ["board"],
            "conditions": [{"field": "goals.actual", "op": "lt", "value": 20}], "description": "Under 20% on any goal"}
    created = await client.put(f"/zones/{zone_id}/alert-rules/under-twenty", json=rule, headers=staff)
    assert created.status_code == 201, created.text
    [low] = await publish_as(zone_stack, review(zone, proficiency=18.0), source=RESULTS_SOURCE)
    [higher] = await publish_as(zone_stack, review(zone, subject=Subject.ELA,
                                                    proficiency=25.0), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 3, e=low)
    rows = await sql(zone_stack, "SELECT DISTINCT severity, rule_names::text FROM notifications.alerts WHERE source_event_id = :e",
                     e=low)
    assert [(r[0], r[1]) for r in rows] == [("warning", '["under-twenty"]')]
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.inbox WHERE event_id = :e", 1, e=higher)
    assert (await sql(zone_stack, ALERTS_OF_EVENT, e=higher))[0][0] == 0


async def test_alert_rule_api_rejects_bad_rules_and_callers_and_stores_nothing(zone_stack, zone_id):
    await seed_zone(zone_stack, zone_id)
    client = zone_stack.clients["notifications"]
    staff = zone_stack.auth("district", zone_id)
    before = await sql(zone_stack, "SELECT count(*) FROM notifications.alert_rules WHERE zone_id = :z", z=zone_id)
    bad = {"event_type": "review.finished", "severity": "urgent", "audiences": [],
           "conditions": [{"field": "status", "op": "in", "value": "off_track"}]}
    response = await client.put(f"/zones/{zone_id}/alert-rules/bad-rule", json=bad, headers=staff)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    problems = response.json()["errors"]
    assert {p["field"] for p in problems} >= {"event_type", "severity", "audiences"}
    unknown_field = {"event_type": "review.completed", "severity": "info", "audiences": ["board"],
                     "conditions": [{"field": "grade", "op": "eq", "value": 5}]}
    response = await client.put(f"/zones/{zone_id}/alert-rules/bad-rule", json=unknown_field, headers=staff)
    assert response.status_code == 422 and "has no field 'grade'" in response.text
    assert await sql(zone_stack, "SELECT count(*) FROM notifications.alert_rules WHERE zone_id = :z", z=zone_id) == before

    good = {"event_type": "order.rejected", "severity": "info", "audiences": ["school_team"]}
    assert (await client.put(f"/zones/{zone_id}/alert-rules/orders", json=good,
                             headers=zone_stack.auth("board", zone_id))).status_code == 403
    assert (await client.put(f"/zones/{zone_id}/alert-rules/orders", json=good,
                             headers=zone_stack.auth("district", f"{zone_id}-other"))).status_code == 404
    first = await client.put(f"/zones/{zone_id}/alert-rules/orders", json=good, headers=staff)
    second = await client.put(f"/zones/{zone_id}/alert-rules/orders", json=good, headers=staff)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["updated_at"] == second.json()["updated_at"]
    listed = await client.get(f"/zones/{zone_id}/alert-rules", headers=zone_stack.auth("board", zone_id))
    assert "orders" in {rule["name"] for rule in listed.json()}
    assert (await client.get(f"/zones/{zone_id}/alert-rules", headers=zone_stack.auth("board", f"{zone_id}-x"))).status_code == 404
    assert (await client.delete(f"/zones/{zone_id}/alert-rules/nope", headers=staff)).status_code == 404


async def test_people_appointed_through_the_plans_api_receive_alerts_end_to_end(zone_stack, zone_id):
    """No hand-made people events: the plans service announces the board and the team."""
    await register_zone(zone_stack, zone_id)
    plans = zone_stack.clients["plans"]
    admin = zone_stack.auth("admin", zone_id)
    member = {"name": "Ada Chair", "seat": 1, "appointed_by": "district", "subject": f"chair-{zone_id}@example.org",
              "active_from": "2024-07-01"}
    assert (await plans.post(f"/zones/{zone_id}/board-members", json=member, headers=admin)).status_code == 201
    school = await register_school(zone_stack, zone_id)
    leader = {"name": "Pat Principal", "subject": f"principal-{zone_id}@example.org", "role": "principal"}
    assert (await plans.post(f"/zones/{zone_id}/schools/{school['id']}/leadership", json=leader,
                             headers=admin)).status_code == 201
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.school_team_members WHERE zone_id = :z", 1, z=zone_id)
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.board_members WHERE zone_id = :z", 1, z=zone_id)
    zone = SeededZone(zone_id, uuid.UUID(school["id"]), school["name"], [member["subject"]], [leader["subject"]], "")

    [event_id] = await publish_as(zone_stack, review(zone), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, ALERTS_OF_EVENT, 2, e=event_id)
    [alert] = (await inbox(zone_stack, zone_id, member["subject"]))["items"]
    assert alert["title"].startswith(f"{school['name']}: Math off track")
