"""Alert emails through a real SMTP server: plain text and HTML, a Message-ID per delivery, and the daily digest."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from ezone_notifications.deliveries.service import deliveries_of
from ezone_schemas import AlertDelivered, topics

from tests.events import publish_as, published_events

from .support import RESULTS_SOURCE, member_auth, review, seed_zone, sql, wait_for_sql
from .test_delivery_worker import new_member, raise_by_hand, raised_alert, wait_for_delivery, wait_for_mail

pytestmark = pytest.mark.usefixtures("metric_reader")


async def test_an_alert_email_has_a_plain_text_and_an_html_part_and_its_deliverys_message_id(zone_stack, smtp_sink, zone_id):
    kit, member = zone_stack.kits["notifications"], new_member()
    alert = raised_alert(zone_id, member, "warning", title="Kiley Prep <Grade 7> & math: off track")
    await raise_by_hand(kit, alert)

    [message] = await wait_for_mail(smtp_sink, member)
    delivery = await wait_for_delivery(kit, alert.id, "email", "sent")
    assert message["Message-ID"] == f"<{delivery.id}@ezone.local>"
    assert message["Subject"] == "[ezone] Warning: Kiley Prep <Grade 7> & math: off track"
    assert message["From"] == "ezone alerts <alerts@ezone.local>" and message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.startswith("WARNING: Kiley Prep <Grade 7> & math: off track\n")
    assert alert.body in text and "Review: http://127.0.0.1:8002/reviews/1" in text
    assert "Kiley Prep &lt;Grade 7&gt; &amp; math: off track" in html and "<Grade 7>" not in html
    assert '<a href="http://127.0.0.1:8002/reviews/1">Review</a>' in html
    assert "/board/preferences" in text and str(delivery.id) in text

    async with kit.sessions() as session:
        [listed] = await deliveries_of(session, alert.id)
    assert (listed["channel"], listed["address"], listed["status"], listed["attempts"]) == ("email", member, "sent", 1)
    [attempt] = listed["attempt_log"]
    assert (attempt["attempt"], attempt["outcome"], attempt["status_code"], attempt["error"]) == (1, "sent", 250, None)


async def test_an_off_track_review_reaches_the_boards_and_the_school_teams_mailboxes(zone_stack, smtp_sink, zone_id):
    zone = await seed_zone(zone_stack, zone_id)
    [event_id] = await publish_as(zone_stack, review(zone), source=RESULTS_SOURCE)
    for member in [*zone.board, *zone.team]:
        [message] = await wait_for_mail(smtp_sink, member)
        assert "Math off track" in message["Subject"]
    sent = ("SELECT count(*) FILTER (WHERE d.status = 'sent') FROM notifications.deliveries d"
            " JOIN notifications.alerts a ON a.id = d.alert_id WHERE a.source_event_id = :e")
    await wait_for_sql(zone_stack, sent, 5, e=event_id)  # critical for the board, warning for the school team
    emails = await sql(zone_stack, "SELECT d.channel, a.severity FROM notifications.deliveries d JOIN notifications.alerts a"
                                   " ON a.id = d.alert_id WHERE a.source_event_id = :e", e=event_id)
    assert sorted((e.severity, e.channel) for e in emails) == [("critical", "email")] * 3 + [("warning", "email")] * 2
    delivered = await published_events(zone_stack, topics.NOTIFICATIONS, AlertDelivered.ce_type, where={"zone_id": zone_id},
                                       expected=5)
    alerts = {str(r.id) for r in await sql(zone_stack, "SELECT id FROM notifications.alerts WHERE source_event_id = :e",
                                            e=event_id)}
    assert sorted(e["channel"] for e in delivered) == ["email"] * 5
    assert {alert for e in delivered for alert in e["alert_ids"]} == alerts


def awake_time_zone(now: datetime) -> ZoneInfo:
    """A time zone where it is neither just after midnight nor just before it: a digest time half an hour ago
    is today's."""
    for name in ("Europe/London", "Asia/Tokyo", "America/Los_Angeles"):
        if 2 <= now.astimezone(ZoneInfo(name)).hour < 22:
            return ZoneInfo(name)
    raise AssertionError("unreachable: the three zones are 8 hours apart")


async def test_info_alerts_held_before_the_digest_time_go_out_as_one_digest_email(zone_stack, smtp_sink, zone_id):
    kit, member = zone_stack.kits["notifications"], new_member()
    now = datetime.now(UTC)
    zone = awake_time_zone(now)
    digest_at = (now - timedelta(minutes=30)).astimezone(zone).replace(microsecond=0)
    response = await zone_stack.clients["notifications"].put(
        f"/zones/{zone_id}/members/me/preferences", headers=member_auth(zone_stack, zone_id, member),
        json={"timezone": zone.key, "channels": {"critical": ["email"], "warning": ["email"], "info": ["email"]},
              "digest": {"enabled": True, "time": digest_at.time().isoformat("seconds")}})
    assert response.status_code == 200, response.text

    earlier = [raised_alert(zone_id, member, "info", created_at=now - timedelta(hours=1), title=f"Plan {n} submitted")
               for n in range(3)]
    later = raised_alert(zone_id, member, "info", created_at=now, title="Plan 4 submitted")
    await raise_by_hand(kit, *earlier, later)

    [digest] = await wait_for_mail(smtp_sink, member)
    assert digest["Subject"] == f"[ezone] Daily digest, {digest_at:%d %B %Y}: 3 alerts"
    text = digest.get_body(("plain",)).get_content()
    assert all(f"Plan {n} submitted" in text for n in range(3)) and "Plan 4 submitted" not in text
    assert "Plan 0 submitted" in digest.get_body(("html",)).get_content()

    [row] = await sql(zone_stack, "SELECT * FROM notifications.digests WHERE zone_id = :z AND recipient = :r",
                      z=zone_id, r=member)
    assert row.local_date == digest_at.date()
    assert sorted(row.alert_ids) == sorted(str(a.id) for a in earlier)
    held = {d.alert_id: (d.status, d.digest_id) for d in await sql(
        zone_stack, "SELECT * FROM notifications.deliveries WHERE alert_id IS NOT NULL AND recipient = :r", r=member)}
    assert held == {**{a.id: ("digested", row.id) for a in earlier}, later.id: ("held_for_digest", None)}
    assert digest["Message-ID"].startswith("<") and str(row.id) not in digest["Message-ID"]

    await asyncio.sleep(1.0)  # several polls later: still one digest today, the later alert waits for tomorrow's
    assert len(smtp_sink.received(member)) == 1
    async with kit.sessions() as session:
        listed = await deliveries_of(session, earlier[0].id)
    assert [(d["status"], d["digest_id"]) for d in listed] == [("digested", row.id), ("sent", row.id)]
    assert listed[1]["attempt_log"][0]["outcome"] == "sent"


async def test_a_member_without_an_email_address_gets_no_email(zone_stack, smtp_sink, zone_id):
    kit = zone_stack.kits["notifications"]
    subject = f"principal-{uuid.uuid4().hex[:8]}"
    alert = raised_alert(zone_id, subject, "critical")
    await raise_by_hand(kit, alert)
    async with kit.sessions() as session:
        assert await deliveries_of(session, alert.id) == []
