"""A member's preferences through the API, and quiet hours holding back everything but critical alerts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.integration.test_registry_api import assert_problem
from tests.stack import Stack

from .support import member_auth, sql
from .test_delivery_worker import new_member, raise_by_hand, raised_alert, wait_for_delivery, wait_for_mail

pytestmark = pytest.mark.usefixtures("metric_reader")

PREFERENCES = {
    "email": "seat-one@home.example",
    "timezone": "Europe/Paris",
    "channels": {"critical": ["webhook", "email"], "warning": ["email"], "info": []},
    "quiet_hours": {"start": "22:00", "end": "07:00"},
    "digest": {"enabled": False, "time": "18:30"},
}


def path(zone_id: str) -> str:
    return f"/zones/{zone_id}/members/me/preferences"


async def stored(stack: Stack, zone_id: str, subject: str) -> list:
    return await sql(stack, "SELECT * FROM notifications.preferences WHERE zone_id = :z AND subject = :s", z=zone_id, s=subject)


async def test_until_a_member_sets_their_own_the_defaults_apply(zone_stack, zone_id):
    member = new_member()
    response = await zone_stack.clients["notifications"].get(path(zone_id), headers=member_auth(zone_stack, zone_id, member))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "email": None, "email_to": member, "timezone": "America/New_York",
        "channels": {"critical": ["email", "webhook"], "warning": ["email", "webhook"], "info": ["email"]},
        "quiet_hours": None, "digest": {"enabled": True, "time": "07:00:00"}, "customized": False, "updated_at": None,
    }
    principal = await zone_stack.clients["notifications"].get(
        path(zone_id), headers=member_auth(zone_stack, zone_id, "principal-0281", role="school",
                                           schools=["00000000-0000-0000-0000-000000000001"]))
    assert principal.json()["email_to"] is None  # a subject that is not an address: no email until one is set


async def test_a_member_replaces_their_preferences_and_the_same_put_again_changes_nothing(zone_stack, zone_id):
    client, member = zone_stack.clients["notifications"], new_member()
    auth = member_auth(zone_stack, zone_id, member)
    first = await client.put(path(zone_id), headers=auth, json=PREFERENCES)
    assert first.status_code == 200, first.text
    again = await client.put(path(zone_id), headers=auth, json=PREFERENCES)
    assert again.status_code == 200 and again.json() == first.json()
    read = (await client.get(path(zone_id), headers=auth)).json()
    assert read == first.json()
    assert read["channels"] == {"critical": ["email", "webhook"], "warning": ["email"], "info": []}
    assert read["quiet_hours"] == {"start": "22:00:00", "end": "07:00:00"}
    assert (read["email_to"], read["customized"]) == ("seat-one@home.example", True)
    audit = await sql(zone_stack, "SELECT action, before, after FROM notifications.audit_log"
                                  " WHERE zone_id = :z AND entity_id = :s", z=zone_id, s=member)
    assert [(a.action, a.before) for a in audit] == [("preferences.updated", None)]

    changed = await client.put(path(zone_id), headers=auth, json={**PREFERENCES, "quiet_hours": None})
    assert changed.json()["quiet_hours"] is None and changed.json()["updated_at"] > first.json()["updated_at"]
    assert len(await sql(zone_stack, "SELECT 1 FROM notifications.audit_log WHERE zone_id = :z AND entity_id = :s",
                         z=zone_id, s=member)) == 2


@pytest.mark.parametrize(("change", "fields"), [
    ({"timezone": "Mars/Olympus_Mons"}, {"timezone"}),
    ({"timezone": "../etc/passwd"}, {"timezone"}),
    ({"channels": {"critical": ["sms"], "warning": [], "info": []}}, {"channels.critical.0"}),
    ({"channels": {"critical": [], "warning": [], "info": [], "urgent": ["email"]}}, {"channels.urgent"}),
    ({"channels": {"critical": ["email", "email"], "warning": [], "info": []}}, {"channels.critical"}),
    ({"channels": {"critical": []}}, {"channels.warning", "channels.info"}),
    ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, {"quiet_hours"}),
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, {"quiet_hours.start"}),
    ({"quiet_hours": {"start": "22:00+02:00", "end": "07:00"}}, {"quiet_hours.start"}),
    ({"quiet_hours": {"start": "22:00"}}, {"quiet_hours.end"}),
    ({"digest": {"enabled": True, "time": "noon"}}, {"digest.time"}),
    ({"email": "not an address"}, {"email"}),
    ({"sms": "+1 555 0100"}, {"sms"}),
])
async def test_bad_input_is_refused_with_problem_details_and_nothing_is_stored(zone_stack, zone_id, change, fields):
    member = new_member()
    response = await zone_stack.clients["notifications"].put(
        path(zone_id), headers=member_auth(zone_stack, zone_id, member), json={**PREFERENCES, **change})
    problem = assert_problem(response, 422)
    assert {error["field"] for error in problem["errors"]} == fields, problem["errors"]
    assert await stored(zone_stack, zone_id, member) == []


async def test_another_zones_member_gets_404_and_systems_have_no_preferences(zone_stack, zone_id):
    client, member = zone_stack.clients["notifications"], new_member()
    await client.put(path(zone_id), headers=member_auth(zone_stack, zone_id, member), json=PREFERENCES)
    outsider = member_auth(zone_stack, "z-another-zone", member)  # the same subject, another zone's token
    assert_problem(await client.get(path(zone_id), headers=outsider), 404)
    assert_problem(await client.put(path(zone_id), headers=outsider, json={**PREFERENCES, "timezone": "UTC"}), 404)
    assert (await stored(zone_stack, zone_id, member))[0].timezone == "Europe/Paris"
    sis = {"Authorization": f"Bearer {zone_stack.token('sis', zone_id, ['00000000-0000-0000-0000-000000000001'])}"}
    assert_problem(await client.get(path(zone_id), headers=sis), 403)


async def test_quiet_hours_defer_a_warning_to_their_end_but_not_a_critical_alert(zone_stack, smtp_sink, zone_id):
    kit, member = zone_stack.kits["notifications"], new_member()
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime.now(UTC)
    end = (now + timedelta(seconds=4)).replace(microsecond=0) + timedelta(seconds=1)
    quiet = {"start": (now - timedelta(hours=1)).astimezone(tokyo).time().isoformat("seconds"),
             "end": end.astimezone(tokyo).time().isoformat("seconds")}
    response = await zone_stack.clients["notifications"].put(
        path(zone_id), headers=member_auth(zone_stack, zone_id, member),
        json={"timezone": "Asia/Tokyo", "quiet_hours": quiet,
              "channels": {"critical": ["email"], "warning": ["email"], "info": ["email"]}})
    assert response.status_code == 200, response.text

    critical = raised_alert(zone_id, member, "critical", title="Critical: participation 80%")
    warning = raised_alert(zone_id, member, "warning", title="Warning: plan returned")
    await raise_by_hand(kit, critical, warning)
    [first] = await wait_for_mail(smtp_sink, member)
    assert first["Subject"] == "[ezone] Critical: Critical: participation 80%"
    [deferred] = [d for d in await sql(zone_stack, "SELECT * FROM notifications.deliveries WHERE alert_id = :a",
                                       a=warning.id)]
    assert (deferred.status, deferred.attempts, deferred.next_attempt_at) == ("pending", 0, end)

    await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds() - 0.5))
    assert len(smtp_sink.received(member)) == 1  # still quiet
    sent = await wait_for_delivery(kit, warning.id, "email", "sent")
    assert sent.sent_at >= end
    assert [m["Subject"] for m in await wait_for_mail(smtp_sink, member, count=2)][1] == "[ezone] Warning: Warning: plan returned"
