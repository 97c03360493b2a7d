"""The board's own pages that need no other service, on the real stack: the alert preferences form and signing in
on the way to a page. (The pages that read plans, reviews and orders are driven in tests/browser/test_board_acts.py,
against `ezone up`, where the services answer on real ports.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from ezone_notifications.session import BOARD_COOKIE

from tests.events import publish_as
from tests.stack import Stack

from .support import RESULTS_SOURCE, member_auth, review, seed_zone, sql, wait_for_sql
from .test_delivery_worker import new_member

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EMAIL_OFF = {"email": "", "timezone": "Europe/Paris", "critical-webhook": "on", "quiet-start": "22:00",
             "quiet-end": "07:00", "digest-time": "18:30"}


@pytest.fixture
async def notifications(zone_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    client = zone_stack.clients["notifications"]
    client.cookies.clear()
    yield client
    client.cookies.clear()


def session(stack: Stack, zone_id: str, subject: str, role: str = "board") -> dict[str, str]:
    return {"Cookie": f"{BOARD_COOKIE}={stack.token(role, zone_id, subject=subject)}"}


async def stored(stack: Stack, zone_id: str, subject: str) -> list:
    return await sql(stack, "SELECT * FROM notifications.preferences WHERE zone_id = :z AND subject = :s",
                     z=zone_id, s=subject)


async def test_the_preferences_form_saves_channels_quiet_hours_and_digest_and_the_same_form_again_changes_nothing(
        zone_stack, zone_id, notifications):
    member = new_member()
    cookie = session(zone_stack, zone_id, member)
    page = await notifications.get("/board/preferences", headers=cookie)
    assert page.status_code == 200 and 'id="critical-email"' in page.text and "checked" in page.text

    for _ in range(2):
        saved = await notifications.post("/board/preferences", content=urlencode(EMAIL_OFF), headers=FORM | cookie)
        assert (saved.status_code, saved.headers["location"]) == (303, "/board/preferences?saved=1")
    [row] = await stored(zone_stack, zone_id, member)
    assert (row.timezone, row.digest) == ("Europe/Paris", False)
    api = (await notifications.get(f"/zones/{zone_id}/members/me/preferences", headers=cookie)).json()
    assert api["channels"] == {"critical": ["webhook"], "warning": [], "info": []}
    assert api["quiet_hours"] == {"start": "22:00:00", "end": "07:00:00"}
    audit = await sql(zone_stack, "SELECT action FROM notifications.audit_log WHERE zone_id = :z AND entity_id = :s",
                      z=zone_id, s=member)
    assert [a.action for a in audit] == ["preferences.updated"]  # the second, identical form changed nothing


@pytest.mark.parametrize(("change", "says"), [
    ({"timezone": "Mars/Olympus"}, "is not an IANA time zone name"),
    ({"quiet-start": "07:00", "quiet-end": "07:00"}, "quiet hours start and end at different times"),
    ({"email": "not an address"}, "email"),
], ids=["timezone", "empty-quiet-hours", "email"])
async def test_a_bad_preferences_form_is_answered_422_saying_what_is_wrong_and_nothing_is_stored(
        zone_stack, zone_id, notifications, change, says):
    member = new_member()
    cookie = session(zone_stack, zone_id, member)
    refused = await notifications.post("/board/preferences", content=urlencode(EMAIL_OFF | change),
                                       headers=FORM | cookie)
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    assert says in refused.text and 'role="alert"' in refused.text
    assert await stored(zone_stack, zone_id, member) == []


async def test_a_page_asked_for_without_a_session_signs_in_first_and_then_opens_that_page(
        zone_stack, zone_id, notifications):
    asked = await notifications.get("/board/preferences")
    assert (asked.status_code, asked.headers["location"]) == (303, "/board?next=/board/preferences")
    form = await notifications.get(asked.headers["location"])
    assert 'name="next" value="/board/preferences"' in form.text
    token = zone_stack.token("board", zone_id, subject=new_member())
    signed_in = await notifications.post("/board/sign-in", headers=FORM,
                                         content=urlencode({"token": token, "next": "/board/preferences"}))
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/board/preferences")
    # Only a board page: another site's address sends the member to the board instead.
    elsewhere = await notifications.post("/board/sign-in", headers=FORM,
                                         content=urlencode({"token": token, "next": "https://evil.example/board/x"}))
    assert elsewhere.headers["location"] == "/board"


async def test_a_school_leader_signs_in_to_their_schools_page_and_the_zone_overview_stays_closed_to_them(
        zone_stack, zone_id, notifications):
    token = zone_stack.token("school", zone_id, ["00000000-0000-0000-0000-000000000001"], subject=new_member("lead"))
    signed_in = await notifications.post("/board/sign-in", content=urlencode({"token": token}), headers=FORM)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/board")
    overview = await notifications.get(f"/zones/{zone_id}/board/overview",
                                       headers={"Cookie": f"{BOARD_COOKIE}={token}"})
    assert overview.status_code == 403


async def test_an_alerts_page_shows_its_recipient_the_trace_id_and_is_not_found_for_anyone_else(
        zone_stack, zone_id, notifications):
    zone = await seed_zone(zone_stack, zone_id)
    [event_id] = await publish_as(zone_stack, review(zone), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.alerts WHERE source_event_id = :e", 5,
                       e=event_id)
    inbox = await notifications.get(f"/zones/{zone_id}/alerts", headers=member_auth(zone_stack, zone_id, zone.board[0]))
    [alert] = inbox.json()["items"]
    assert alert["trace_id"] and len(alert["trace_id"]) == 32  # the inbox API says it too

    page = await notifications.get(f"/board/alerts/{alert['id']}", headers=session(zone_stack, zone_id, zone.board[0]))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'<code id="trace-id">{alert["trace_id"]}</code>' in page.text
    assert "John J Duggan Academy: Math off track (2025-26)" in page.text
    # Another member's copy of the alert has its own id: this one is not theirs, nor another zone's member's.
    for cookie in (session(zone_stack, zone_id, zone.board[1]), session(zone_stack, f"{zone_id}-other", zone.board[0])):
        refused = await notifications.get(f"/board/alerts/{alert['id']}", headers=cookie)
        assert refused.status_code == 404 and 'data-status="404"' in refused.text
        assert alert["trace_id"] not in refused.text and "Duggan" not in refused.text
