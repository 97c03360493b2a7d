"""The live stream (Server-Sent Events) over a real HTTP server: new alerts are pushed, missed ones replayed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
from ezone_notifications.session import BOARD_COOKIE
from sqlalchemy import text

from tests.events import publish_as
from tests.stack import served

from .support import RESULTS_SOURCE, member_auth, review, seed_zone, wait_for_sql


async def next_event(lines: AsyncIterator[str], timeout_s: float = 15.0) -> dict:
    """The next SSE event (comments skipped) as {event, id, data}."""
    async def read() -> dict:
        event: dict = {}
        async for line in lines:
            if not line:
                if "data" in event:
                    return event
                event = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), timeout_s)


async def subscribed(lines: AsyncIterator[str], timeout_s: float = 15.0) -> None:
    """Read up to the stream's `: connected` comment, sent once it listens for its member's alerts."""
    async def read() -> None:
        async for line in lines:
            if line.startswith(": connected"):
                return
        raise AssertionError("the stream ended before it was connected")

    await asyncio.wait_for(read(), timeout_s)


async def test_new_alert_is_pushed_to_an_open_stream_and_read_state_follows(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    member = zone.board[0]
    async with served(zone_stack, "notifications") as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        async with client.stream("GET", f"/zones/{zone_id}/alerts/stream",
                                 headers=member_auth(zone_stack, zone_id, member)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            [event_id] = await publish_as(zone_stack, review(zone), source=RESULTS_SOURCE)
            pushed = await next_event(lines)
            assert pushed["event"] == "alert"
            alert = json.loads(pushed["data"])
            assert alert["source_event_id"] == str(event_id) and alert["recipient"] == member
            assert pushed["id"] == str(alert["seq"])
            # Pushed from the NOTIFY payload: the same alert the inbox API answers, field for field.
            listed = await client.get(f"/zones/{zone_id}/alerts/{alert['id']}", headers=member_auth(zone_stack, zone_id, member))
            assert alert == listed.json()

            await client.post(f"/zones/{zone_id}/alerts/{alert['id']}/read", headers=member_auth(zone_stack, zone_id, member))
            updated = await next_event(lines)
            assert updated["event"] == "alert-updated" and json.loads(updated["data"])["read_at"] is not None


async def test_an_alert_too_long_for_a_notify_is_read_back_and_pushed(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    member = zone.board[0]
    body = "Participation fell in every grade. " * 300  # ~10,000 bytes: more than a NOTIFY payload holds
    async with served(zone_stack, "notifications") as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        async with client.stream("GET", f"/zones/{zone_id}/alerts/stream",
                                 headers=member_auth(zone_stack, zone_id, member)) as response:
            lines = response.aiter_lines()
            await subscribed(lines)  # the insert below commits after the stream listens, or its NOTIFY is missed
            async with zone_stack.kits["notifications"].engine.begin() as connection:
                await connection.execute(text("""
                INSERT INTO notifications.alerts (id, zone_id, recipient, audience, severity, rule_names, title, body,
                                                  source_event_id, source_type)
                VALUES (gen_random_uuid(), :zone, :member, 'board', 'critical', '[]', 'Long', :body,
                        gen_random_uuid(), 'review.completed')"""), {"zone": zone_id, "member": member, "body": body})
            pushed = json.loads((await next_event(lines))["data"])
            assert pushed["title"] == "Long" and pushed["body"] == body


async def test_a_reconnecting_page_first_receives_what_it_missed(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    member = zone.board[1]
    [first] = await publish_as(zone_stack, review(zone, version=1), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.alerts WHERE source_event_id = :e", 5, e=first)
    [second] = await publish_as(zone_stack, review(zone, version=2), source=RESULTS_SOURCE)
    await wait_for_sql(zone_stack, "SELECT count(*) FROM notifications.alerts WHERE source_event_id = :e", 5, e=second)
    seqs = await zone_stack.clients["notifications"].get(
        f"/zones/{zone_id}/alerts", params={"state": "all"}, headers=member_auth(zone_stack, zone_id, member))
    older_seq = min(a["seq"] for a in seqs.json()["items"])

    async with served(zone_stack, "notifications") as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        headers = {**member_auth(zone_stack, zone_id, member), "Last-Event-ID": str(older_seq)}
        async with client.stream("GET", f"/zones/{zone_id}/alerts/stream", headers=headers) as response:
            replayed = await next_event(response.aiter_lines())
            assert json.loads(replayed["data"])["source_event_id"] == str(second)


async def test_the_stream_admits_the_board_session_cookie_and_refuses_other_zones(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    token = zone_stack.token("board", zone_id, subject=zone.board[0])
    async with served(zone_stack, "notifications") as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        client.cookies.set(BOARD_COOKIE, token)
        listed = await client.get(f"/zones/{zone_id}/alerts")
        assert listed.status_code == 200
        other = await client.get(f"/zones/{zone_id}-b/alerts/stream")
        assert other.status_code == 404
        client.cookies.clear()
        anonymous = await client.get(f"/zones/{zone_id}/alerts/stream")
        assert anonymous.status_code == 401


async def test_a_last_event_id_that_is_no_sequence_number_of_the_stream_opens_it_from_now(zone_stack, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    headers = member_auth(zone_stack, zone_id, zone.board[0])
    async with served(zone_stack, "notifications") as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        # A digit that is not ASCII, a number beyond the sequence's 64 bits, a word
        for last_event_id in (b"\xb2", str(2**63).encode(), b"latest"):
            async with client.stream("GET", f"/zones/{zone_id}/alerts/stream",
                                     headers={**headers, "Last-Event-ID": last_event_id}) as response:
                assert response.status_code == 200
                await subscribed(response.aiter_lines())
